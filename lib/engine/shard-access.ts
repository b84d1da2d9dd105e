/**
 * What the engine needs of the databases: run a query shaped for a shard on a node of that
 * shard. Which node (the primary, or a replica fresh enough for the request) is the access's
 * choice; every statement then passes the node's gate (access/node-gate.ts), so every error
 * leaves as a ShardKitError naming the shard and node. Tests give the engine a recording fake.
 */
import type { QueryPriority, ShardKitError } from '../errors.js';
import type { AnyQueryBuilder, BuilderMethod } from '../knex/builder-internals.js';
import type { ConsistencyToken } from '../replicas/consistency-token.js';
import type { ReadPreference } from '../replicas/read-router.js';
import type { ReadSession } from '../replicas/read-session.js';

/** Reads may be served by replicas; writes always run on the primary. */
export type QueryIntent = 'read' | 'write';

export interface RoutingOptions {
  read: ReadPreference;
  priority: QueryPriority;
  /** When the whole call must have settled (performance.now() milliseconds). */
  deadline: number;
  /** The call's timeout, for each wait for the next row of a stream. */
  timeoutMs: number;
  /** Abandons the call's reads (writes run to their end, so that their outcome is known). */
  signal?: AbortSignal;
  /** Positions a read must see, per shard (an explicit `after` token). */
  after?: ConsistencyToken;
  /** The read-your-writes session the query runs in: its writes record positions, its reads carry them. */
  session?: ReadSession;
}

export interface ShardRequest {
  intent: QueryIntent;
  table: string;
  method: BuilderMethod;
  routing: RoutingOptions;
}

/**
 * How a shard's transaction ended: committed with each statement's result, or not, with the
 * error; `unknown` when the connection failed or timed out during COMMIT itself.
 */
export type TransactOutcome =
  | { committed: true; results: unknown[] }
  | { committed: false | 'unknown'; error: ShardKitError };

export interface ShardAccess {
  /** Runs `query` on the shard. It is only read, never changed: a read's may be the caller's own builder (shard-query.ts). */
  run(shard: string, request: ShardRequest, query: AnyQueryBuilder): Promise<unknown>;
  /** Runs `queries` in one transaction on the shard's primary (a write's part on that shard). */
  transact(shard: string, request: ShardRequest, queries: readonly AnyQueryBuilder[]): Promise<TransactOutcome>;
  /** The rows of a select as they arrive, holding the node's admission slot until the last one; `query` as for run(). */
  stream(shard: string, request: ShardRequest, query: AnyQueryBuilder): AsyncIterable<Record<string, unknown>>;
}
