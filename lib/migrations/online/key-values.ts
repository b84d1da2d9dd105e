/**
 * The distinct values of a table's shard key after `after`, in order, at most `limit`: a walk
 * of the key's index that reads no row. A rebalance's backfill and verify walk a table this way
 * and read rows only for the values that move. On PostgreSQL the values come back as one array
 * (one row for the driver to parse instead of thousands).
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../../config/config-types.js';
import { whereAfter } from '../../engine/keyset-pagination.js';

export async function keyValuesAfter(db: Knex, family: SqlFamily, table: string, shardKey: string, after: readonly unknown[] | null, limit: number): Promise<unknown[]> {
  const values = whereAfter(db(table), [{ column: shardKey }], after).distinct({ k: shardKey }).orderBy(shardKey).limit(limit);
  if (family === 'postgres') {
    const [row] = (await db.select(db.raw('array_agg(k order by k) as ks')).from(values.as('walk'))) as { ks: unknown }[];
    if (row?.ks === null || row?.ks === undefined) return [];
    // An array of a type the driver cannot parse arrives as text: then the values come as rows.
    if (Array.isArray(row.ks)) return row.ks;
  }
  const listed: { k: unknown }[] = await values;
  return listed.map((row) => row.k);
}
