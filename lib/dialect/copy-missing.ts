/**
 * PostgreSQL's bulk path for a backfill batch: COPY FROM STDIN (CSV) straight into the target,
 * the way the database loads rows fastest. COPY cannot skip rows that exist, so a batch that
 * meets a row already there (one the dual write put in meanwhile: unique violation, 23505) fails
 * whole, nothing of it stored, and goes again through the insert-if-absent path, which leaves
 * that newer row untouched. A row holding a value CSV would have to guess the type of (an
 * object, an array: json or an array column) goes that way from the start.
 *
 * Values are written as the driver writes them as parameters, so a row stores the same on either
 * path: a Date as the driver's timestamp text, an exact temporal as its own text, a Buffer as
 * bytea hex, a BigInt as its digits. Every string is quoted, so that only an absent value is NULL.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import { from as copyFrom } from 'pg-copy-streams';
import { driverCodeOf } from '../errors.js';
import { isGuarded, onGuardedConnection } from '../knex/guarded-client.js';
import { ExactTemporal } from './exact-temporal.js';
import { byteaHex, groupByColumns, type InsertMissing } from './insert-missing.js';

type Row = Record<string, unknown>;

const UNIQUE_VIOLATION = '23505';

/** Insert-if-absent by COPY, `fallback` for a batch that COPY cannot take whole. */
export function insertMissingByCopy(dateText: (date: Date) => string, fallback: InsertMissing): InsertMissing {
  return async (db, table, rows, key) => {
    // COPY runs on a driver connection through the node's gate; a knex of no kit node writes the other way.
    if (!isGuarded(db)) return fallback(db, table, rows, key);
    for (const { columns, group } of groupByColumns(rows)) {
      const { lines, copied, others } = csvOf(group, columns, dateText);
      if (others.length > 0) await fallback(db, table, others, key);
      if (copied.length === 0) continue;
      try {
        await copyInto(db, table, columns, lines);
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        await fallback(db, table, copied, key);
      }
    }
  };
}

async function copyInto(db: Knex, table: string, columns: readonly string[], csv: string): Promise<void> {
  const sql = db.raw('COPY ?? (??) FROM STDIN (FORMAT csv)', [table, [...columns]]).toQuery();
  await onGuardedConnection(db, sql, async (connection) => {
    const copy = (connection as { query(submittable: unknown): NodeJS.WritableStream }).query(copyFrom(sql));
    await pipeline(Readable.from([csv]), copy);
  });
}

/** The rows as CSV lines (`copied`), but for those holding a value without one text form for every column type (`others`). */
function csvOf(rows: readonly Row[], columns: readonly string[], dateText: (date: Date) => string): { lines: string; copied: Row[]; others: Row[] } {
  const lines: string[] = [];
  const copied: Row[] = [];
  const others: Row[] = [];
  for (const row of rows) {
    const line = csvLine(row, columns, dateText);
    if (line === undefined) others.push(row);
    else {
      lines.push(line);
      copied.push(row);
    }
  }
  lines.push('');
  return { lines: lines.join('\n'), copied, others };
}

/** One row as a CSV line, or undefined when one of its values has no one text form for every column type. */
function csvLine(row: Row, columns: readonly string[], dateText: (date: Date) => string): string | undefined {
  let line = '';
  for (let index = 0; index < columns.length; index++) {
    const field = csvField(row[columns[index]!], dateText);
    if (field === undefined) return undefined;
    line = index === 0 ? field : `${line},${field}`;
  }
  return line;
}

function csvField(value: unknown, dateText: (date: Date) => string): string | undefined {
  switch (typeof value) {
    case 'undefined':
      return '';
    case 'string':
      return quoted(value);
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return '';
      if (value instanceof ExactTemporal) return quoted(value.text);
      if (value instanceof Date) return quoted(dateText(value));
      // bytea: a Buffer from node-postgres, a Uint8Array from PGlite.
      if (value instanceof Uint8Array) return byteaHex(value);
      return undefined;
    default:
      return undefined;
  }
}

function quoted(text: string): string {
  return text.includes('"') ? `"${text.replaceAll('"', '""')}"` : `"${text}"`;
}

function isUniqueViolation(error: unknown): boolean {
  return driverCodeOf(error) === UNIQUE_VIOLATION;
}
