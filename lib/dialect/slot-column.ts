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
 * Writes past the kit leave a slot missing, not wrong, as long as they do not write it: rows
 * inserted past the kit have none (NULL), and a trigger clears it when an update changes the
 * shard key without setting the slot. A rebalance writes the missing slots (found by the index:
 * `slot IS NULL`) before it reads a shard. What no trigger sees (a row copied with its slot
 * under another key, a MySQL foreign-key cascade) is found by a verify that walks every key.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { ConfigError } from '../errors.js';
import { chunks } from '../util/chunks.js';
import { type SlotRun, slotsIn } from '../hashing/slot-runs.js';
import { SLOT_COUNT } from '../hashing/key-hasher.js';

export interface SlotColumnOptions {
  /** The table's shard key. */
  shardKey: string;
  /** The slot column, as `tables.<name>.slotColumn` names it. Default 'shard_slot'. */
  column?: string;
}

export const DEFAULT_SLOT_COLUMN = 'shard_slot';

/** Runs one statement reads: PostgreSQL takes them as two arrays, MySQL and MariaDB as an OR of ranges (two parameters each). */
export function runsPerStatement(family: SqlFamily): number {
  return family === 'postgres' ? 4000 : 500;
}

/** Keys whose missing slots one statement writes. */
const FILL_BATCH = 2000;

function familyOf(knex: Knex): SqlFamily {
  return (knex.client as { dialect?: string }).dialect === 'mysql' ? 'mysql' : 'postgres';
}

/** MariaDB refuses names over 64 characters (PostgreSQL cuts them at 63): a long one keeps its start and a hash of the rest. */
function boundedName(name: string): string {
  if (name.length <= 60) return name;
  let hash = 0;
  for (const char of name) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) >>> 0;
  return `${name.slice(0, 51)}_${hash.toString(16).padStart(8, '0')}`;
}

const names = (table: string, column: string) => ({ index: boundedName(`${table}_${column}_idx`), trigger: boundedName(`${table}_${column}_reset`) });
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

/** Removes what addSlotColumn added: its trigger, its index (MariaDB would keep it on the shard key alone) and the column. */
export async function dropSlotColumn(knex: Knex, table: string, options: SlotColumnOptions): Promise<void> {
  const column = options.column ?? DEFAULT_SLOT_COLUMN;
  const { index, trigger } = names(table, column);
  if (familyOf(knex) === 'mysql') await knex.raw('drop trigger if exists ??', [trigger]);
  else await knex.raw('drop trigger if exists ?? on ??', [trigger, table]);
  await knex.schema.alterTable(table, (builder) => {
    builder.dropIndex([column, options.shardKey], index);
    builder.dropColumn(column);
  });
}

/** A FROM clause (and WHERE) naming the table's rows `__sk_row`, with its parameters. */
export interface RowsClause {
  sql: string;
  bindings: Knex.RawBinding[];
}

/**
 * The rows whose slot lies in one of `runs`, one index range scan per run. PostgreSQL joins the
 * runs as two arrays (a nested loop of index scans whatever the table's statistics say; a long
 * OR of ranges becomes a scan of the whole table when the column has no statistics, and a
 * bitmap OR costs ~50 µs a range when it has). MySQL and MariaDB get the OR of ranges, which
 * their range optimiser scans from the index.
 */
export function rowsInSlots(family: SqlFamily, table: string, column: string, runs: readonly SlotRun[]): RowsClause {
  if (family === 'postgres') {
    return {
      sql: 'from unnest(?::int[], ?::int[]) as __sk_runs(lo, hi) join ?? as __sk_row on __sk_row.?? between __sk_runs.lo and __sk_runs.hi',
      bindings: [runs.map((run) => run.first), runs.map((run) => run.last), table, column],
    };
  }
  return { sql: `from ?? as __sk_row where (${runs.map(() => '__sk_row.?? between ? and ?').join(' or ')})`, bindings: [table, ...runs.flatMap((run) => [column, run.first, run.last])] };
}

/**
 * Runs `statement` as PostgreSQL should plan a read by slot runs: without JIT compilation, which
 * the join's row estimate (a third of the table per run, for want of better) would start at a
 * cost of ~90 ms to save nothing. Elsewhere the statement runs as it is.
 */
export function readBySlots<T>(db: Knex, family: SqlFamily, statement: (db: Knex) => Promise<T>): Promise<T> {
  if (family !== 'postgres') return statement(db);
  return db.transaction(async (trx) => {
    await trx.raw('set local jit = off');
    return statement(trx);
  });
}

/** `runs` in pieces of a size one statement takes. */
function statementPieces(family: SqlFamily, runs: readonly SlotRun[]): SlotRun[][] {
  return chunks(runs, runsPerStatement(family));
}

/** The distinct shard-key values of the rows in `runs`, read from the (slot, key) index. */
export async function keysInSlots(db: Knex, family: SqlFamily, table: string, shardKey: string, column: string, runs: readonly SlotRun[]): Promise<unknown[]> {
  return (await listInSlots(db, family, table, shardKey, column, runs, false)).map((pair) => pair.key);
}

/** The distinct (shard-key value, slot) pairs of the rows in `runs`: a key whose rows hold a slot not its own shows it. */
export function keySlotsInSlots(db: Knex, family: SqlFamily, table: string, shardKey: string, column: string, runs: readonly SlotRun[]): Promise<{ key: unknown; slot: number }[]> {
  return listInSlots(db, family, table, shardKey, column, runs, true);
}

async function listInSlots(db: Knex, family: SqlFamily, table: string, shardKey: string, column: string, runs: readonly SlotRun[], withSlots: boolean): Promise<{ key: unknown; slot: number }[]> {
  const listed: { key: unknown; slot: number }[] = [];
  for (const piece of statementPieces(family, runs)) {
    const rows = rowsInSlots(family, table, column, piece);
    const distinct = withSlots ? { sql: 'select distinct __sk_row.?? as k, __sk_row.?? as s', bindings: [shardKey, column] } : { sql: 'select distinct __sk_row.?? as k', bindings: [shardKey] };
    if (family === 'postgres') {
      // One array (two with slots) for the driver to parse instead of thousands of rows (as key-values.ts does).
      const result = await readBySlots(db, family, (reader) =>
        reader.raw(`select array_agg(k) as ks${withSlots ? ', array_agg(s) as ss' : ''} from (${distinct.sql} ${rows.sql}) as __sk_listed`, [...distinct.bindings, ...rows.bindings]),
      );
      const { ks, ss } = ((result as { rows: { ks: unknown; ss?: unknown }[] }).rows[0] ?? {}) as { ks?: unknown; ss?: unknown };
      // An array of a type the driver cannot parse arrives as text: then the values come as rows.
      if (Array.isArray(ks) || ks === null || ks === undefined) {
        const slots = (ss as number[] | null | undefined) ?? [];
        for (const [index, key] of ((ks as unknown[] | null | undefined) ?? []).entries()) listed.push({ key, slot: Number(slots[index]) });
        continue;
      }
    }
    const result = await readBySlots(db, family, (reader) => reader.raw(`${distinct.sql} ${rows.sql}`, [...distinct.bindings, ...rows.bindings]));
    for (const { k, s } of rowsOf(family, result) as { k: unknown; s?: unknown }[]) listed.push({ key: k, slot: Number(s) });
  }
  return listed;
}

/** How many distinct shard-key values the rows in `runs` hold. */
export async function countKeysInSlots(db: Knex, family: SqlFamily, table: string, shardKey: string, column: string, runs: readonly SlotRun[]): Promise<number> {
  let total = 0;
  for (const piece of statementPieces(family, runs)) {
    const rows = rowsInSlots(family, table, column, piece);
    const result = await readBySlots(db, family, (reader) => reader.raw(`select count(distinct __sk_row.??) as n ${rows.sql}`, [shardKey, ...rows.bindings]));
    total += Number((rowsOf(family, result)[0] as { n?: unknown } | undefined)?.n ?? 0);
  }
  return total;
}

/**
 * About how many shard-key values the rows in `runs` hold, from the table's row estimate (the
 * planner's on PostgreSQL, InnoDB's on MySQL and MariaDB) times the runs' share of the slots:
 * keys hash uniformly over the slots. It counts rows, not keys, so it is high for a shard key
 * with several rows each; without an estimate (a table never analyzed) it guesses a key per slot.
 */
export async function estimateKeysInSlots(db: Knex, family: SqlFamily, table: string, runs: readonly SlotRun[]): Promise<number> {
  const slots = slotsIn(runs);
  const result =
    family === 'postgres'
      ? await db.raw('select reltuples as n from pg_class where oid = to_regclass(?)', [table])
      : await db.raw('select table_rows as n from information_schema.tables where table_schema = database() and table_name = ?', [table]);
  const rows = Number((rowsOf(family, result)[0] as { n?: unknown } | undefined)?.n ?? -1);
  return Number.isFinite(rows) && rows >= 0 ? Math.round((rows * slots) / SLOT_COUNT) : slots;
}

/**
 * Writes the right slot on the rows of some shard-key values whose slot is another or none
 * (written past the kit): `values` as the driver returns them, `canonical` and `slots` the same
 * values as the router hashes them and their slots. Rows are found by the key's index and
 * matched like fillMissingSlots matches them; rows already right are not written.
 */
export async function restampSlots(
  db: Knex,
  family: SqlFamily,
  table: string,
  shardKey: string,
  column: string,
  keys: { values: readonly unknown[]; canonical: readonly unknown[]; slots: readonly number[] },
): Promise<void> {
  if (keys.values.length > 0) await writeSlots(db, family, table, shardKey, column, keys, { values: keys.values });
}

/**
 * Writes `slots` on the rows of the `canonical` keys (matched as text on PostgreSQL, by the
 * column's collation on MySQL and MariaDB): those without a slot (`'missing'`, found by the slot
 * index), or those of `values` (the same keys as the driver returns them, found by the key's
 * index) whose slot differs. Returns how many rows it wrote.
 */
async function writeSlots(
  db: Knex,
  family: SqlFamily,
  table: string,
  shardKey: string,
  column: string,
  keys: { canonical: readonly unknown[]; slots: readonly number[] },
  which: 'missing' | { values: readonly unknown[] },
): Promise<number> {
  if (family === 'postgres') {
    const rows = which === 'missing' ? { sql: 't.?? is null', bindings: [column] } : { sql: 't.?? = any(?) and t.?? is distinct from v.s', bindings: [shardKey, [...which.values], column] };
    const result = await db.raw(`update ?? as t set ?? = v.s from unnest(?::text[], ?::int[]) as v(k, s) where ${rows.sql} and t.??::text = v.k`, [
      table,
      column,
      keys.canonical.map(String),
      [...keys.slots],
      ...rows.bindings,
      shardKey,
    ] as Knex.RawBinding[]);
    return Number((result as { rowCount?: unknown }).rowCount ?? 0);
  }
  const values = keys.canonical.map(() => 'select ? as k, ? as s').join(' union all ');
  const condition = which === 'missing' ? 't.?? is null' : 'not (t.?? <=> v.s)';
  const [result] = await db.raw(`update ?? as t join (${values}) as v on t.?? = v.k set t.?? = v.s where ${condition}`, [
    table,
    ...keys.canonical.flatMap((key, index) => [key, keys.slots[index]]),
    shardKey,
    column,
    column,
  ] as Knex.RawBinding[]);
  return Number((result as { affectedRows?: unknown }).affectedRows ?? 0);
}

/** The rows of a raw select: node-postgres and PGlite answer `{ rows }`, mysql2 `[rows, fields]`. */
function rowsOf(family: SqlFamily, result: unknown): unknown[] {
  return family === 'postgres' ? (result as { rows: unknown[] }).rows : (result as [unknown[]])[0];
}

/**
 * Writes the slot of every row that has none (inserted past the kit, or its key changed past
 * it). `canonical` is the key as the router hashes it (by its column's type: hashing/
 * key-canonical.ts), `slotOf` its slot. Rows are found again by that canonical key's text, which
 * is how PostgreSQL prints the column (char(n) without its padding); MySQL and MariaDB compare
 * it by the column's collation. Returns how many shard-key values it gave slots.
 */
export async function fillMissingSlots(
  db: Knex,
  family: SqlFamily,
  table: string,
  shardKey: string,
  column: string,
  canonical: (key: unknown) => unknown,
  slotOf: (canonicalKey: unknown) => number,
): Promise<number> {
  let filled = 0;
  let stuck = false;
  for (;;) {
    const missing = ((await db(table).whereNull(column).distinct({ k: shardKey }).limit(FILL_BATCH)) as { k: unknown }[]).map((row) => canonical(row.k));
    if (missing.length === 0) return filled;
    const slots = missing.map(slotOf);
    // The rows without a slot come from the index (slot IS NULL).
    const updated = await writeSlots(db, family, table, shardKey, column, { canonical: missing, slots }, 'missing');
    // Nothing written may be a fill that ran meanwhile, or rows deleted since they were listed:
    // listed again. Keys that twice find no row of theirs would be listed forever.
    if (updated === 0 && stuck) {
      throw new ConfigError([{ path: `tables.${table}.slotColumn`, message: `the rows of ${missing.length} shard-key values without a slot could not be given one (a key type a rebalance cannot move?)` }]);
    }
    stuck = updated === 0;
    filled += updated === 0 ? 0 : missing.length;
  }
}
