/**
 * What routing decided for one query, as plain data: tests compare plans to expected plans
 * without a database, and the engine executes them.
 */
import type { BuilderMethod } from '../knex/builder-internals.js';
import type { MergeSpec } from './merge-spec.js';
import type { LookupJoinSpec } from './plan-lookup-join.js';
import type { InlinedSubquery } from './plan-subqueries.js';

/**
 * Where a query runs: nowhere (its shard-key condition admits no key), the owner(s) of the
 * keys it pins (one, some), or every shard because it pins none (all).
 */
export type Route =
  | { kind: 'none' }
  | { kind: 'one'; shard: string }
  | { kind: 'some'; shards: string[] }
  | { kind: 'all'; shards: string[] };

export interface QueryPlan {
  table: string;
  method: BuilderMethod;
  route: Route;
  /** For `IN` on the shard key: the keys each shard is asked for (its `IN` lists are narrowed to them). */
  keysByShard?: Record<string, unknown[]>;
  /** How the query spells the shard-key column (`id`, `u.id`, ...), for narrowing `IN` lists. */
  keyColumns?: string[];
  /** For inserts: the indexes of the rows each shard receives. */
  rowsByShard?: Record<string, number[]>;
  /** For inserts into a table with a slot column: the column and each row's slot, written with the row. */
  insertSlots?: { column: string; slots: number[] };
  /** For a select on several shards: what each shard is asked and how the rows merge. */
  merge?: MergeSpec;
  /** Subqueries to evaluate before the query can be planned (plan-subqueries.ts); then it is planned again. */
  inline?: InlinedSubquery[];
  /** A join whose rows live on different shards, run by the kit as a lookup join (plan-lookup-join.ts). */
  lookupJoin?: LookupJoinSpec;
}

export function targetShards(route: Route): string[] {
  switch (route.kind) {
    case 'none':
      return [];
    case 'one':
      return [route.shard];
    default:
      return route.shards;
  }
}

/** The route to the owners of pinned keys ('all' is kept for queries that pin nothing). */
export function routeToOwners(shards: readonly string[]): Route {
  if (shards.length === 0) return { kind: 'none' };
  if (shards.length === 1) return { kind: 'one', shard: shards[0]! };
  return { kind: 'some', shards: [...shards] };
}
