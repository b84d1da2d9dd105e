/**
 * Slot columns: a sharded table's column holding each row's hash slot (docs/hashing.md, step
 * 2), indexed with the shard key, so that a rebalance finds the rows whose owner changes by
 * index ranges instead of listing every shard-key value (docs/rebalance.md, "Slot columns").
 *
 * Why a column the kit writes rather than the hash computed by the database: neither PostgreSQL
 * nor MariaDB has xxh64, and written in SQL (64-bit products done in 32-bit halves) it would
 * cost tens of microseconds a row on every insert and index build, while the kit hashes every
 * key it routes anyway. The hashing spec stays the one source of truth: the slot is the one the
 * router computes.
 *
 * A slot is never stale, only missing: rows inserted past the kit have none (NULL), and a
 * trigger clears it when an update changes the shard key without setting the slot. A rebalance
 * writes the missing slots (found by the index: `slot IS NULL`) before it reads a shard.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { ConfigError } from '../errors.js';
import type { SlotRun } from '../hashing/slot-runs.js';

export interface SlotColumnOptions {
  /** The table's shard key. */
  shardKey: string;
  /** The slot column, as `tables.<name>.slotColumn` names it. Default 'shard_slot'. */
  column?: string;
}

export const DEFAULT_SLOT_COLUMN = 'shard_slot';
/** Runs in one statement's WHERE: two parameters each. */
export const MAX_RUNS_PER_STATEMENT = 500;
/** Keys whose missing slots one statement writes. */
const FILL_BATCH = 2000;

function familyOf(knex: Knex): SqlFamily {
  return (knex.client as { dialect?: string }).dialect === 'mysql' ? 'mysql' : 'postgres';
}

const names = (table: string, column: string) => ({ index: `${table}_${column}_idx`, trigger: `${table}_${column}_reset` });
/** A name in a trigger's argument list, where parameters cannot go: a quoted SQL string. */
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * Adds the slot column, its index (slot, shard key) and the trigger that clears it on key
 * changes; for a knex schema migration run on every shard. Existing rows get their slots from
 * the next rebalance, which writes missing ones first.
 */
export async function addSlotColumn(knex: Knex, table: string, options: SlotColumnOptions): Promise<void> {
  const column = options.column ?? DEFAULT_SLOT_COLUMN;
  const { index, trigger } = names(table, column);
  await knex.schema.alterTable(table, (builder) => {
    builder.integer(column).nullable();
    builder.index([column, options.shardKey], index);
  });
  if (familyOf(knex) === 'mysql') {
    await knex.raw(
      `create trigger ?? before update on ?? for each row
         if not (new.?? <=> old.??) and new.?? <=> old.?? then set new.?? = null; end if`,
      [trigger, table, options.shardKey, options.shardKey, column, column, column],
    );
    return;
  }
  await knex.raw(`create or replace function shardkit_slot_reset() returns trigger language plpgsql as $$
    begin
      if (to_jsonb(new) -> tg_argv[0]) is distinct from (to_jsonb(old) -> tg_argv[0])
         and (to_jsonb(new) -> tg_argv[1]) is not distinct from (to_jsonb(old) -> tg_argv[1]) then
        new := jsonb_populate_record(new, jsonb_build_object(tg_argv[1], null));
      end if;
      return new;
    end $$`);
  await knex.raw(`create trigger ?? before update of ?? on ?? for each row execute function shardkit_slot_reset(${literal(options.shardKey)}, ${literal(column)})`, [
    trigger,
    options.shardKey,
    table,
  ]);
}

/** Removes what addSlotColumn added (the column, its index and its trigger). */
export async function dropSlotColumn(knex: Knex, table: string, options: SlotColumnOptions): Promise<void> {
  const column = options.column ?? DEFAULT_SLOT_COLUMN;
  const { trigger } = names(table, column);
  await knex.raw(familyOf(knex) === 'mysql' ? 'drop trigger if exists ??' : 'drop trigger if exists ?? on ??', [trigger, table]);
  await knex.schema.alterTable(table, (builder) => builder.dropColumn(column));
}

/** A condition and its parameters, for knex's whereRaw or a raw statement. */
export interface SlotCondition {
  sql: string;
  bindings: Knex.RawBinding[];
}

/**
 * "The row's slot lies in one of `runs`": a range each, which the planner scans from the slot
 * index (a bitmap OR on PostgreSQL, the range optimiser on MySQL and MariaDB). PostgreSQL picks
 * that plan only when it knows the column's distribution: see gatherSlotStatistics.
 */
export function slotCondition(column: string, runs: readonly SlotRun[]): SlotCondition {
  return { sql: `(${runs.map(() => '?? between ? and ?').join(' or ')})`, bindings: runs.flatMap((run) => [column, run.first, run.last]) };
}

/**
 * PostgreSQL: the slot column's statistics (ANALYZE of that column, a sample of at most 30,000
 * rows). Without them the planner guesses each range holds 0.5% of the table, and for a few
 * hundred ranges it reads the whole table instead of the index (measured: 2-3 s instead of
 * 10 ms for 500 ranges of 150,000 rows). Autovacuum gathers them too, but not in time for a
 * table loaded just before a rebalance.
 */
export async function gatherSlotStatistics(db: Knex, family: SqlFamily, table: string, column: string): Promise<void> {
  if (family === 'postgres') await db.raw('analyze ?? (??)', [table, column]);
}

/** `runs` in pieces of a size one statement takes. */
function statementPieces(runs: readonly SlotRun[]): SlotRun[][] {
  const pieces: SlotRun[][] = [];
  for (let start = 0; start < runs.length; start += MAX_RUNS_PER_STATEMENT) pieces.push(runs.slice(start, start + MAX_RUNS_PER_STATEMENT));
  return pieces;
}

/** The distinct shard-key values of the rows in `runs`, read from the (slot, key) index. */
export async function keysInSlots(db: Knex, family: SqlFamily, table: string, shardKey: string, column: string, runs: readonly SlotRun[]): Promise<unknown[]> {
  const keys: unknown[] = [];
  for (const piece of statementPieces(runs)) {
    const where = slotCondition(column, piece);
    const listed = db(table).whereRaw(where.sql, where.bindings).distinct({ k: shardKey });
    if (family === 'postgres') {
      // One array for the driver to parse instead of thousands of rows (as key-values.ts does).
      const [row] = (await db.select(db.raw('array_agg(k) as ks')).from(listed.as('walk'))) as { ks: unknown }[];
      if (Array.isArray(row?.ks)) {
        keys.push(...row.ks);
        continue;
      }
      if (row?.ks === null || row?.ks === undefined) continue;
    }
    for (const { k } of (await listed) as { k: unknown }[]) keys.push(k);
  }
  return keys;
}

/** How many distinct shard-key values the rows in `runs` hold. */
export async function countKeysInSlots(db: Knex, table: string, shardKey: string, column: string, runs: readonly SlotRun[]): Promise<number> {
  let total = 0;
  for (const piece of statementPieces(runs)) {
    const where = slotCondition(column, piece);
    const [row] = (await db(table).whereRaw(where.sql, where.bindings).countDistinct({ n: shardKey })) as { n: unknown }[];
    total += Number(row?.n ?? 0);
  }
  return total;
}

/**
 * Writes the slot of every row that has none (inserted past the kit, or its key changed past
 * it), `slotOf` computing it from the shard-key value as the router does. Returns how many
 * shard-key values it gave slots.
 */
export async function fillMissingSlots(
  db: Knex,
  family: SqlFamily,
  table: string,
  shardKey: string,
  column: string,
  slotOf: (key: unknown) => number,
): Promise<number> {
  let filled = 0;
  for (;;) {
    const missing = ((await db(table).whereNull(column).distinct({ k: shardKey }).limit(FILL_BATCH)) as { k: unknown }[]).map((row) => row.k);
    if (missing.length === 0) return filled;
    const slots = missing.map(slotOf);
    let updated: number;
    if (family === 'postgres') {
      // The rows without a slot come from the index (slot IS NULL); their keys match as text.
      const result = await db.raw(`update ?? as t set ?? = v.s from unnest(?::text[], ?::int[]) as v(k, s) where t.?? is null and t.??::text = v.k`, [
        table,
        column,
        missing.map(String),
        slots,
        column,
        shardKey,
      ] as Knex.RawBinding[]);
      updated = Number((result as { rowCount?: unknown }).rowCount ?? 0);
    } else {
      const values = missing.map(() => 'select ? as k, ? as s').join(' union all ');
      const [result] = await db.raw(`update ?? as t join (${values}) as v on t.?? = v.k set t.?? = v.s where t.?? is null`, [
        table,
        ...missing.flatMap((key, index) => [key, slots[index]]),
        shardKey,
        column,
        column,
      ] as Knex.RawBinding[]);
      updated = Number((result as { affectedRows?: unknown }).affectedRows ?? 0);
    }
    // Keys that do not find their rows again would be listed forever.
    if (updated === 0) {
      throw new ConfigError([{ path: `tables.${table}.slotColumn`, message: `the rows of ${missing.length} shard-key values without a slot could not be given one (a key type a rebalance cannot move?)` }]);
    }
    filled += missing.length;
  }
}
