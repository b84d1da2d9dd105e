/**
 * Bulk INSERT that leaves rows whose key already exists untouched: how a backfill copies a batch
 * without overwriting a newer dual-written row.
 *
 * On PostgreSQL a batch travels as one JSON parameter expanded by json_populate_recordset, so
 * neither knex nor the driver builds and binds thousands of parameters; that is most of the cost
 * of a generic multi-row INSERT. Values are encoded as the driver would send them as parameters,
 * so a row stores the same either way: a Date as the driver's timestamp text, a Buffer as bytea
 * hex, a BigInt as its digits.
 */
import type { Knex } from 'knex';
import { ExactTemporal, writable } from './exact-temporal.js';

type Row = Record<string, unknown>;

export type InsertMissing = (db: Knex, table: string, rows: readonly Row[], key: readonly string[]) => Promise<void>;

/**
 * Rows per statement of a generic multi-row INSERT: MySQL refuses a statement past
 * max_allowed_packet (16 MB by default in MariaDB), which rows of up to ~16 KB stay under; wider
 * rows need a smaller batch. Statements of one batch commit one by one: harmless for an
 * insert-if-absent, which a repeat of the batch leaves as it is.
 */
const ROWS_PER_INSERT = 1000;

/** Any dialect: knex's INSERT ... ON CONFLICT DO NOTHING (INSERT IGNORE on MySQL), at most ROWS_PER_INSERT rows a statement. */
export const insertMissingWithKnex: InsertMissing = async (db, table, rows, key) => {
  for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
    await db(table)
      .insert(rows.slice(start, start + ROWS_PER_INSERT).map(writable))
      .onConflict([...key])
      .ignore();
  }
};

/** PostgreSQL dialects; `dateText` renders a Date as the dialect's driver does for a parameter. */
export function insertMissingAsJson(dateText: (date: Date) => string): InsertMissing {
  const encode = (value: unknown): unknown => {
    if (value instanceof ExactTemporal) return value.text;
    if (value instanceof Date) return dateText(value);
    // bytea: a Buffer from node-postgres, a Uint8Array from PGlite (JSON would make it an object of indexes).
    if (value instanceof Uint8Array) return byteaHex(value);
    if (typeof value === 'bigint') return value.toString();
    // JSON has no NaN or Infinity (JSON.stringify makes them null); the server reads their text.
    if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
    // An array column (timestamp[]): its elements as the driver would send them too.
    if (Array.isArray(value)) return value.map(encode);
    return value;
  };
  return async (db, table, rows, key) => {
    // Columns a row leaves out take their defaults, as in a knex insert: one statement per column set.
    for (const { columns, group } of groupByColumns(rows)) {
      // Plain objects: JSON.stringify without a replacer stays on V8's fast path.
      const encoded = group.map((row) => {
        const plain: Row = {};
        for (const column of columns) {
          const value = row[column];
          plain[column] = typeof value === 'object' || typeof value === 'bigint' || (typeof value === 'number' && !Number.isFinite(value)) ? encode(value) : value;
        }
        return plain;
      });
      await db.raw('INSERT INTO ?? (??) SELECT ?? FROM json_populate_recordset(NULL::??, ?) ON CONFLICT (??) DO NOTHING', [
        table,
        columns,
        columns,
        table,
        JSON.stringify(encoded),
        [...key],
      ]);
    }
  };
}

/** bytea's hex input form of some bytes. */
export function byteaHex(bytes: Uint8Array): string {
  return `\\x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

/** Rows by the set of columns they give (undefined ones left out), each set's columns in its first row's order. */
export function groupByColumns(rows: readonly Row[]): { columns: string[]; group: Row[] }[] {
  const groups = new Map<string, { columns: string[]; group: Row[] }>();
  let last: { columns: string[]; group: Row[] } | undefined;
  for (const row of rows) {
    // Rows of a batch nearly always give the same columns: checked in place, without a key string per row.
    if (last && givesExactly(row, last.columns)) {
      last.group.push(row);
      continue;
    }
    const columns = Object.keys(row).filter((column) => row[column] !== undefined);
    const id = columns.join('\u0000');
    last = groups.get(id) ?? { columns, group: [] };
    groups.set(id, last);
    last.group.push(row);
  }
  return [...groups.values()];
}

/** Whether `row`'s defined values are of `columns`, in that order. */
function givesExactly(row: Row, columns: readonly string[]): boolean {
  let given = 0;
  for (const column of Object.keys(row)) {
    if (row[column] === undefined) continue;
    if (columns[given] !== column) return false;
    given++;
  }
  return given === columns.length;
}

/** What node-postgres sends for a Date: local time with the zone offset (its default). */
export function localTimestampText(date: Date): string {
  const pad = (value: number, width = 2) => String(Math.abs(value)).padStart(width, '0');
  const offset = -date.getTimezoneOffset();
  const year = date.getFullYear();
  const zone = `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  const text = `${pad(year < 1 ? 1 - year : year, 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}${zone}`;
  return year < 1 ? `${text} BC` : text;
}
