/**
 * Move markers: on each shard, the rows moving into it ('in') or out of it ('out') during a
 * rebalance. Between its first copy and the end of cleanup a moving row lives on two serving
 * shards; statements that run on every shard exclude the rows marked 'in' before cutover and
 * those marked 'out' from cutover on, so each sees every row once whatever phase it runs in.
 *
 *   by key    a table without a slot column: each moving shard-key value is marked before its
 *             row is copied, so a copy is never visible unmarked
 *   by slot   a table with a slot column: the runs of slots that change owner are marked when
 *             the rebalance starts (some thousands of rows, however many rows move); a row is
 *             marked by the slot it holds, and every copy holds its key's slot (the source's
 *             slot is put right before a key is copied by key: moving-table.ts)
 */
import { createTableIfAbsent } from '../knex/create-table-if-absent.js';
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import type { AnyQueryBuilder } from '../knex/builder-internals.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { groupBy } from '../util/group-by.js';
import { whereValueIn } from '../dialect/value-list.js';
import type { ShardRuns } from './slot-moves.js';
import { chunks } from '../util/chunks.js';

export const MARKERS_TABLE = 'shardkit_rebalance_keys';
export const RUN_MARKERS_TABLE = 'shardkit_rebalance_runs';

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

export async function ensureMarkersTable(db: Knex): Promise<void> {
  await createTableIfAbsent(db, MARKERS_TABLE, (table) => {
    table.string('tbl', 128).notNullable();
    table.string('dir', 3).notNullable();
    table.string('k', 255).notNullable();
    table.primary(['tbl', 'dir', 'k']);
  });
  await createTableIfAbsent(db, RUN_MARKERS_TABLE, (table) => {
    table.string('tbl', 128).notNullable();
    table.string('dir', 3).notNullable();
    table.integer('lo').notNullable();
    table.integer('hi').notNullable();
    table.primary(['tbl', 'dir', 'lo']);
  });
}

/** Replaces the run markers of `table` on each shard by its runs (before the move is recorded, once no instance hides rows of an earlier one). */
export async function markSlotRuns(databases: ShardDatabases, table: string, shards: readonly ShardRuns[]): Promise<void> {
  await Promise.all(
    shards.map(async ({ shard, ...runs }) => {
      const db = databases.primary(shard);
      const rows = (['out', 'in'] as const).flatMap((dir) => runs[dir].map((run) => ({ tbl: table, dir, lo: run.first, hi: run.last })));
      await db.transaction(async (trx) => {
        await trx(RUN_MARKERS_TABLE).where('tbl', table).del();
        for (const group of chunks(rows, RUN_ROWS_PER_INSERT)) await trx(RUN_MARKERS_TABLE).insert(group);
      });
    }),
  );
}

/** Run markers per INSERT: 4 parameters each, well inside every dialect's bound. */
const RUN_ROWS_PER_INSERT = 2000;

/** The run markers of `table` on this shard (none where the markers' table does not exist yet). */
export async function countRunMarkers(db: Knex, table: string): Promise<number> {
  if (!(await db.schema.hasTable(RUN_MARKERS_TABLE))) return 0;
  const [row] = (await db(RUN_MARKERS_TABLE).where('tbl', table).count('* as n')) as { n: unknown }[];
  return Number(row?.n ?? 0);
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

/**
 * Excludes the rows marked `direction` for `table` on each shard: `AND CAST(column AS text) NOT
 * IN (the marked keys)`, and with `slotColumn` (qualified like `column`) also the rows whose slot
 * lies in a marked run, found by the run that starts at or before it (one probe of the markers'
 * primary key a row). A row without a slot was never copied: it is never hidden.
 */
export function excludeMarked(builder: AnyQueryBuilder, family: SqlFamily, column: string, table: string, direction: MarkerDirection, slotColumn?: string): void {
  const query = builder as unknown as Knex.QueryBuilder;
  const cast = family === 'mysql' ? 'CAST(?? AS CHAR)' : 'CAST(?? AS TEXT)';
  query.whereNotIn(query.client.raw(cast, [column]) as never, function (this: Knex.QueryBuilder) {
    this.select('k').from(MARKERS_TABLE).where({ tbl: table, dir: direction });
  });
  if (!slotColumn) return;
  query.whereRaw(
    '(?? is null or ?? > coalesce((select __sk_run.hi from ?? as __sk_run where __sk_run.tbl = ? and __sk_run.dir = ? and __sk_run.lo <= ?? order by __sk_run.lo desc limit 1), -1))',
    [slotColumn, slotColumn, RUN_MARKERS_TABLE, table, direction, slotColumn],
  );
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

/** Removes markers of `table`: some keys of one direction, or (without `keys`) every marker, run markers included. */
export async function clearMarkers(db: Knex, family: SqlFamily, table: string, direction?: MarkerDirection, keys?: readonly string[]): Promise<void> {
  const query = db(MARKERS_TABLE).where('tbl', table);
  if (direction) query.where('dir', direction);
  if (keys) whereValueIn(query, family, 'k', keys);
  await query.del();
  if (keys) return;
  const runs = db(RUN_MARKERS_TABLE).where('tbl', table);
  if (direction) runs.where('dir', direction);
  await runs.del();
}
