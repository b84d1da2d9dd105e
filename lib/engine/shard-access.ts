/**
 * The one seam between the engine and the databases: run a query shaped for a shard on a node
 * of that shard. Which node (primary, or a replica that is fresh enough) is this seam's choice;
 * every driver error leaves it as a ShardKitError naming the shard and node.
 */
import type { AnyQueryBuilder } from '../planner/builder-internals.js';

/** Reads may be served by replicas; writes and DDL always run on the primary. */
export type QueryIntent = 'read' | 'write';

export interface ShardAccess {
  /** `query` is the engine's private copy for this shard (see shard-query.ts), free to rebind. */
  run(shard: string, intent: QueryIntent, query: AnyQueryBuilder): Promise<unknown>;
}
