/**
 * A checksum of the rows of some shard-key values, or of some slot runs, computed by the server: how a verify compares
 * a copied chunk on two shards without reading its rows. Each row's text is hashed (MD5, its first
 * 60 bits as an integer) and the hashes summed, so the result does not depend on row order, and
 * the row count comes with it.
 *
 * Equal checksums mean equal rows (up to a 60-bit collision). A difference proves nothing about
 * which rows differ, and may be one of spelling only (a timestamptz printed in another session
 * time zone): the caller then compares those rows one by one.
 */
import type { Knex } from 'knex';
import type { SlotRun } from '../hashing/slot-runs.js';
import { type SlotCondition, slotCondition } from './slot-column.js';

/** Which rows: those of some shard-key values, or those whose slot column lies in some runs (at most a statement's pieces: slot-column.ts). */
export type ChecksumRows = { shardKey: string; keys: readonly unknown[] } | { slotColumn: string; runs: readonly SlotRun[] };

export interface RowChecksum {
  rows: number;
  /** The sum of the rows' hashes, as decimal text (it exceeds 2^53). */
  sum: string;
}

export type RowChecksums = (db: Knex, table: string, rows: ChecksumRows) => Promise<RowChecksum>;

/** The WHERE of `rows`, with its parameters; `keysIn` spells "the shard key is one of these" in the dialect. */
function whereOf(rows: ChecksumRows, keysIn: (shardKey: string, keys: readonly unknown[]) => SlotCondition): SlotCondition {
  return 'keys' in rows ? keysIn(rows.shardKey, rows.keys) : slotCondition(rows.slotColumn, rows.runs);
}

function checksumOf(row: { n?: unknown; h?: unknown } | undefined): RowChecksum {
  return { rows: Number(row?.n ?? 0), sum: String(row?.h ?? '0') };
}

/**
 * PostgreSQL: the row's own text form, every column in table order. The alias is shardkit's: a
 * table with a column of the alias's name would make `alias::text` that column alone.
 */
export const postgresRowChecksums: RowChecksums = async (db, table, rows) => {
  const where = whereOf(rows, (shardKey, keys) => ({ sql: '?? = any(?)', bindings: [shardKey, [...keys] as Knex.RawBinding] }));
  const result = await db.raw(
    `select count(*) as n, coalesce(sum(('x' || substr(md5(__sk_row::text), 1, 15))::bit(60)::bigint), 0)::text as h
       from ?? as __sk_row where ${where.sql}`,
    [table, ...where.bindings],
  );
  return checksumOf((result as { rows: { n?: unknown; h?: unknown }[] }).rows[0]);
};

/** MySQL and MariaDB: every column QUOTE()d (NULL apart from 'NULL'), in table order, joined. */
export const mysqlRowChecksums: RowChecksums = async (db, table, rows) => {
  const columns = await columnsInOrder(db, table);
  const row = `concat_ws(',', ${columns.map(() => 'quote(??)').join(', ')})`;
  const where = whereOf(rows, (shardKey, keys) => ({ sql: `?? in (${keys.map(() => '?').join(', ')})`, bindings: [shardKey, ...(keys as Knex.RawBinding[])] }));
  const [sums] = (await db.raw(
    `select count(*) as n, cast(coalesce(sum(cast(conv(substr(md5(${row}), 1, 15), 16, 10) as unsigned)), 0) as char) as h
       from ?? where ${where.sql}`,
    [...columns, table, ...where.bindings],
  )) as [{ n?: unknown; h?: unknown }[]];
  return checksumOf(sums[0]);
};

async function columnsInOrder(db: Knex, table: string): Promise<string[]> {
  const [rows] = (await db.raw(
    'select column_name as name from information_schema.columns where table_schema = database() and table_name = ? order by ordinal_position',
    [table],
  )) as [{ name: string }[]];
  return rows.map((row) => row.name);
}
