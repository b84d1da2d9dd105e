/**
 * Routed transactions on one shard: `kit.transaction(key, async (trx) => ...)`. The shard is the
 * key's owner (or named); `trx.table(name)` gives builders that are planned like kit.table()'s
 * and run inside that shard's database transaction, so a statement that would touch another
 * shard is refused (CrossShardTransactionError) before it runs. Every statement passes the
 * shard primary's guarded seam (deadline, breaker, typed errors, events); the whole transaction
 * shares one deadline (`timeoutMs`).
 *
 *   - `trx.transaction(fn)` is a savepoint: its failure rolls back its own statements only
 *   - `isolation` sets the level; `retries` re-runs the whole function after a serialization
 *     failure or a deadlock (40001/40P01, ER_LOCK_DEADLOCK/ER_LOCK_WAIT_TIMEOUT), with backoff
 *   - after COMMIT the read session (kit.session) records the shard's position, so its reads see
 *     the transaction's writes
 *   - a table in an online migration or a rebalance is refused inside a transaction for now:
 *     its writes would not be dual-written (use kit.table(), which carries them)
 */
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import type { ResolvedConfig } from '../config/config-types.js';
import { executeInTransaction } from '../engine/execute-in-transaction.js';
import { driverCodeOf, MigrationPhaseError, type QueryPriority, UnknownShardError, UnsupportedQueryError } from '../errors.js';
import type { AnyQueryBuilder } from '../knex/builder-internals.js';
import type { QueryPlan } from '../planner/query-plan.js';
import { currentSession } from '../replicas/read-session.js';
import { recordWritePosition } from '../replicas/write-position.js';
import type { Topology } from '../topology/topology.js';

export type IsolationLevel = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

export interface TransactionOptions {
  isolation?: IsolationLevel;
  /** Re-runs of the whole function after a serialization failure or deadlock. Default 0. */
  retries?: number;
  /** The whole transaction's deadline, from its start (default `timeouts.queryMs`). */
  timeoutMs?: number;
  priority?: QueryPriority;
}

/** Where a routed transaction runs: the owner of a key, or a named shard. */
export type TransactionTarget = { key: unknown } | { shard: string };

/** The transaction a routed builder runs in (see QueryPipeline). */
export interface TransactionBinding {
  execute(plan: QueryPlan, builder: AnyQueryBuilder): Promise<unknown>;
}

export interface RoutedTransaction {
  /** The shard this transaction runs on. */
  readonly shard: string;
  /** A routed builder whose statements run in this transaction. */
  table<TRecord extends {} = any, TResult = TRecord[]>(name: string): Knex.QueryBuilder<TRecord, TResult>;
  /** A savepoint: `fn`'s statements roll back alone when it fails. */
  transaction<T>(fn: (trx: RoutedTransaction) => Promise<T>): Promise<T>;
}

export interface TransactionParts {
  config: ResolvedConfig;
  topology: Topology;
  maxParameters: number;
  /** A routed builder of `table` bound to a transaction. */
  builder(table: string, binding: TransactionBinding): Knex.QueryBuilder;
  /** The online migrations or rebalance moving the table, which a transaction must not bypass. */
  movingTables(table: string): { name: string; phase: string }[];
  /** Lets the migration coordinator wait for the transaction before it acknowledges a phase. */
  trackWrite<T>(write: Promise<T>): Promise<T>;
}

const CONFLICT_CODES = new Set(['40001', '40P01', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);
const MAX_BACKOFF_MS = 200;

export async function runTransaction<T>(parts: TransactionParts, target: TransactionTarget, fn: (trx: RoutedTransaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const shard = 'shard' in target ? shardNamed(parts.topology, target.shard) : parts.topology.ownerOf(target.key);
  const timeoutMs = options.timeoutMs ?? parts.config.timeouts.queryMs;
  const deadline = performance.now() + timeoutMs;
  const retries = Math.max(0, Math.floor(options.retries ?? 0));
  for (let attempt = 0; ; attempt++) {
    try {
      const attempt = withScope({ priority: options.priority ?? 'normal', deadline, purpose: 'transaction' }, () =>
        shard.primary.knex.transaction(async (trx) => {
          const touched = new Set<string>();
          const result = await fn(routedTransaction(parts, shard.name, trx, touched));
          // A migration may have started while the function ran: its tables must not commit unseen.
          for (const table of touched) refuseMoving(parts, table);
          return result;
        }, options.isolation ? { isolationLevel: options.isolation } : {}),
      );
      const result = await parts.trackWrite(attempt);
      const session = currentSession();
      if (session) await recordWritePosition(shard, session, deadline);
      return result;
    } catch (error) {
      const backoff = Math.min(MAX_BACKOFF_MS, 5 * 2 ** attempt) * (0.5 + Math.random());
      if (attempt >= retries || !isConflict(error) || performance.now() + backoff >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}

function refuseMoving(parts: TransactionParts, table: string): void {
  const [moving] = parts.movingTables(table);
  if (moving) {
    throw new MigrationPhaseError(moving.name, table, moving.phase, 'inside kit.transaction() its statements would not be carried to the other table; use kit.table() until it completes');
  }
}

function routedTransaction(parts: TransactionParts, shard: string, trx: Knex.Transaction, touched: Set<string>): RoutedTransaction {
  let open = true;
  trx.executionPromise.finally(() => (open = false)).catch(() => undefined);
  const binding: TransactionBinding = {
    execute: async (plan, builder) => {
      if (!open) throw new UnsupportedQueryError('transaction', 'the transaction has ended: use its builders inside its function');
      refuseMoving(parts, plan.table);
      touched.add(plan.table);
      return executeInTransaction(plan, builder, shard, trx, parts.maxParameters);
    },
  };
  return {
    shard,
    table: (name) => parts.builder(name, binding),
    transaction: (inner) => trx.transaction((savepoint) => inner(routedTransaction(parts, shard, savepoint, touched))),
  };
}

function shardNamed(topology: Topology, name: string) {
  if (!topology.shards.some((shard) => shard.name === name)) throw new UnknownShardError(name, topology.shards.map((shard) => shard.name));
  return topology.shard(name);
}

function isConflict(error: unknown): boolean {
  const code = driverCodeOf(error);
  return code !== undefined && CONFLICT_CODES.has(code);
}
