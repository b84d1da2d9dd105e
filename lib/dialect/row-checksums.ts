/**
 * A checksum of the rows of some shard-key values, or of some slot runs, computed by the server:
 * how a verify compares a copied chunk on two shards without reading its rows. Each row is hashed
 * (on PostgreSQL to 64 bits by its columns' hash functions, on MySQL and MariaDB by the first 60
 * bits of the MD5 of its text) and the hashes summed, so the result does not depend on row
 * order, and the row count comes with it.
 *
 * Equal checksums mean equal rows (up to a 60-bit collision). A difference proves nothing about
 * which rows differ, and may be one of spelling only (on MySQL and MariaDB, a value printed
 * another way): the caller then compares those rows one by one.
 */
import type { Knex } from 'knex';
import type { SlotRun } from '../hashing/slot-runs.js';
import type { SqlFamily } from '../config/config-types.js';
import { driverCodeOf } from '../errors.js';
import { readBySlots, type RowsClause, rowsInSlots } from './slot-column.js';

/** Which rows: those of some shard-key values, or those whose slot column lies in some runs (at most runsPerStatement(): slot-column.ts). */
export type ChecksumRows = { shardKey: string; keys: readonly unknown[] } | { slotColumn: string; runs: readonly SlotRun[] };

export interface RowChecksum {
  rows: number;
  /** The sum of the rows' hashes, as decimal text (it exceeds 2^53). */
  sum: string;
}

export type RowChecksums = (db: Knex, table: string, rows: ChecksumRows) => Promise<RowChecksum>;

/** The FROM clause of `rows`, the table aliased `__sk_row`; `keysIn` spells "the shard key is one of these" in the dialect. */
function fromOf(family: SqlFamily, table: string, rows: ChecksumRows, keysIn: (shardKey: string, keys: readonly unknown[]) => RowsClause): RowsClause {
  if ('runs' in rows) return rowsInSlots(family, table, rows.slotColumn, rows.runs);
  const where = keysIn(rows.shardKey, rows.keys);
  return { sql: `from ?? as __sk_row where ${where.sql}`, bindings: [table, ...where.bindings] };
}

function checksumOf(row: { n?: unknown; h?: unknown } | undefined): RowChecksum {
  return { rows: Number(row?.n ?? 0), sum: String(row?.h ?? '0') };
}

/** Tables with a column type that has no hash function (json, point, xml): checksummed by their text. */
const hashedAsText = new Set<string>();
const UNDEFINED_FUNCTION = '42883';

/**
 * PostgreSQL: the row hashed to 64 bits by hash_record_extended, every column in table order by
 * its type's own hash function (those of hash partitioning: the same on every platform and
 * release), at a third of the cost of hashing the row's text (measured 70 against 180 ms for
 * 150,000 rows) and blind to how a session prints values (a timestamptz in another time zone).
 * A table with a column whose type has no hash function is hashed by its row's text instead
 * (hashtextextended). The alias is shardkit's: a table with a column of the alias's name would
 * make `alias` that column alone.
 */
export const postgresRowChecksums: RowChecksums = async (db, table, rows) => {
  const from = fromOf('postgres', table, rows, (shardKey, keys) => ({ sql: '__sk_row.?? = any(?)', bindings: [shardKey, [...keys] as Knex.RawBinding] }));
  const hash = (asText: boolean) => (asText ? 'hashtextextended(__sk_row::text, 0)' : 'hash_record_extended(__sk_row, 0)');
  const checksum = (asText: boolean) => (reader: Knex) => reader.raw(`select count(*) as n, coalesce(sum(${hash(asText)}), 0)::text as h ${from.sql}`, from.bindings);
  const run = (asText: boolean) => ('runs' in rows ? readBySlots(db, 'postgres', checksum(asText)) : checksum(asText)(db));
  let result: unknown;
  try {
    result = await run(hashedAsText.has(table));
  } catch (error) {
    if (hashedAsText.has(table) || driverCodeOf(error) !== UNDEFINED_FUNCTION) throw error;
    hashedAsText.add(table);
    result = await run(true);
  }
  return checksumOf((result as { rows: { n?: unknown; h?: unknown }[] }).rows[0]);
};

/** MySQL and MariaDB: every column QUOTE()d (NULL apart from 'NULL'), in table order, joined. */
export const mysqlRowChecksums: RowChecksums = async (db, table, rows) => {
  const columns = await columnsInOrder(db, table);
  const row = `concat_ws(',', ${columns.map(() => 'quote(__sk_row.??)').join(', ')})`;
  const from = fromOf('mysql', table, rows, (shardKey, keys) => ({ sql: `__sk_row.?? in (${keys.map(() => '?').join(', ')})`, bindings: [shardKey, ...(keys as Knex.RawBinding[])] }));
  const [sums] = (await db.raw(`select count(*) as n, cast(coalesce(sum(cast(conv(substr(md5(${row}), 1, 15), 16, 10) as unsigned)), 0) as char) as h ${from.sql}`, [
    ...columns,
    ...from.bindings,
  ])) as [{ n?: unknown; h?: unknown }[]];
  return checksumOf(sums[0]);
};

async function columnsInOrder(db: Knex, table: string): Promise<string[]> {
  const [rows] = (await db.raw(
    'select column_name as name from information_schema.columns where table_schema = database() and table_name = ? order by ordinal_position',
    [table],
  )) as [{ name: string }[]];
  return rows.map((row) => row.name);
}
