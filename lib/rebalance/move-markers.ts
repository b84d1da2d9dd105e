/**
 * Move markers: on each shard, the shard-key values of the rows moving into it ('in') or out of
 * it ('out') during a rebalance. Between its first copy and the end of cleanup a moving row lives
 * on two serving shards; statements that run on every shard exclude the rows marked 'in' before
 * cutover and those marked 'out' from cutover on, so each sees every row once whatever phase it
 * runs in. A marker is written before its row is copied, so a copy is never visible unmarked.
 */
import { createTableIfAbsent } from '../knex/create-table-if-absent.js';
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import type { AnyQueryBuilder } from '../knex/builder-internals.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { groupBy } from '../util/group-by.js';
import { whereValueIn } from '../dialect/value-list.js';

export const MARKERS_TABLE = 'shardkit_rebalance_keys';

export type MarkerDirection = 'in' | 'out';

export interface KeyMove {
  /** The shard-key value as the driver returns it. */
  key: unknown;
  from: string;
  to: string;
}

/** The marker of a shard-key value: its text as the database casts it (integers in base 10, strings as they are). */
export function markerText(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') return String(value);
  throw new TypeError(`a rebalance moves tables with string or integer shard keys; got ${value === null ? 'null' : typeof value}`);
}

export function ensureMarkersTable(db: Knex): Promise<void> {
  return createTableIfAbsent(db, MARKERS_TABLE, (table) => {
    table.string('tbl', 128).notNullable();
    table.string('dir', 3).notNullable();
    table.string('k', 255).notNullable();
    table.primary(['tbl', 'dir', 'k']);
  });
}

/**
 * Marks each move on both its shards ('out' on the old owner, 'in' on the new one), existing
 * markers left alone, by the dialect's bulk insert-if-absent (COPY on PostgreSQL, a third of the
 * cost of an INSERT ... ON CONFLICT of the same keys).
 */
export async function markMoves(databases: ShardDatabases, table: string, moves: readonly KeyMove[]): Promise<void> {
  const marks = moves.flatMap((move) => [
    { shard: move.from, dir: 'out' as const, k: markerText(move.key) },
    { shard: move.to, dir: 'in' as const, k: markerText(move.key) },
  ]);
  await Promise.all(
    [...groupBy(marks, (mark) => mark.shard)].map(([shard, group]) =>
      databases.dialectOf(shard).insertMissing(
        databases.primary(shard),
        MARKERS_TABLE,
        group.map((mark) => ({ tbl: table, dir: mark.dir, k: mark.k })),
        ['tbl', 'dir', 'k'],
      ),
    ),
  );
}

/** Adds `AND CAST(column AS text) NOT IN (the keys marked `direction` for `table` on this shard)`. */
export function excludeMarked(builder: AnyQueryBuilder, family: SqlFamily, column: string, table: string, direction: MarkerDirection): void {
  const query = builder as unknown as Knex.QueryBuilder;
  const cast = family === 'mysql' ? 'CAST(?? AS CHAR)' : 'CAST(?? AS TEXT)';
  query.whereNotIn(query.client.raw(cast, [column]) as never, function (this: Knex.QueryBuilder) {
    this.select('k').from(MARKERS_TABLE).where({ tbl: table, dir: direction });
  });
}

/** At most `limit` marked keys: cleanup deletes their rows and markers, then asks for the next ones. */
export async function markedKeys(db: Knex, table: string, direction: MarkerDirection, limit: number): Promise<string[]> {
  const rows = await db(MARKERS_TABLE).where({ tbl: table, dir: direction }).limit(limit).select('k');
  return rows.map((row: { k: unknown }) => String(row.k));
}

export async function countMarked(db: Knex, table: string, direction: MarkerDirection): Promise<number> {
  const [row] = (await db(MARKERS_TABLE).where({ tbl: table, dir: direction }).count('* as n')) as { n: unknown }[];
  return Number(row?.n ?? 0);
}

export async function clearMarkers(db: Knex, family: SqlFamily, table: string, direction?: MarkerDirection, keys?: readonly string[]): Promise<void> {
  const query = db(MARKERS_TABLE).where('tbl', table);
  if (direction) query.where('dir', direction);
  if (keys) whereValueIn(query, family, 'k', keys);
  await query.del();
}
