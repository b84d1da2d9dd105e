/**
 * The distinct values of a table's shard key after `after`, in order, at most `limit`: a walk
 * of the key's index that reads no row. A rebalance's backfill and verify walk a table this way
 * and read rows only for the values that move.
 */
import type { Knex } from 'knex';
import { whereAfter } from '../../engine/keyset-pagination.js';

export async function keyValuesAfter(db: Knex, table: string, shardKey: string, after: readonly unknown[] | null, limit: number): Promise<unknown[]> {
  const listed: Record<string, unknown>[] = await whereAfter(db(table), [{ column: shardKey }], after).distinct(shardKey).orderBy(shardKey).limit(limit);
  return listed.map((row) => row[shardKey]);
}
