/**
 * The distinct values of a table's shard key from a position, in order, at most `limit`: a walk
 * of the key's index that reads no row. A rebalance's backfill and verify walk a table this way
 * and read rows only for the values that move. On PostgreSQL the values come back as one array
 * (one row for the driver to parse instead of thousands). Shard-key values are never NULL (no
 * row with a NULL key can be routed), so one comparison places the walk.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../../config/config-types.js';

/** Where a walk starts: after a value, or at it (inclusive), or from the start (null). */
export interface KeyPosition {
  value: unknown;
  inclusive: boolean;
}

export async function keyValuesFrom(db: Knex, family: SqlFamily, table: string, shardKey: string, from: KeyPosition | null, limit: number): Promise<unknown[]> {
  const query = db(table);
  if (from) query.where(shardKey, from.inclusive ? '>=' : '>', from.value as never);
  const values = query.distinct({ k: shardKey }).orderBy(shardKey).limit(limit);
  if (family === 'postgres') {
    const [row] = (await db.select(db.raw('array_agg(k order by k) as ks')).from(values.as('walk'))) as { ks: unknown }[];
    if (row?.ks === null || row?.ks === undefined) return [];
    // An array of a type the driver cannot parse arrives as text: then the values come as rows.
    if (Array.isArray(row.ks)) return row.ks;
  }
  const listed: { k: unknown }[] = await values;
  return listed.map((row) => row.k);
}
