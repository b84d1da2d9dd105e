/**
 * COPY ... FROM STDIN into a PostgreSQL table through a knex instance's pool: the fastest way to
 * load rows, used to fill benchmark tables and as the baseline the backfill is measured against.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import { from as copyFrom } from 'pg-copy-streams';

const LINES_PER_CHUNK = 2000;

function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = value instanceof Date ? value.toISOString() : String(value);
  return /[",\n\r]/.test(text) || text === '' ? `"${text.replaceAll('"', '""')}"` : text;
}

function* csvChunks(rows: Iterable<Record<string, unknown>>, columns: readonly string[]): Generator<string> {
  let lines: string[] = [];
  for (const row of rows) {
    lines.push(`${columns.map((column) => csvField(row[column])).join(',')}\n`);
    if (lines.length === LINES_PER_CHUNK) {
      yield lines.join('');
      lines = [];
    }
  }
  if (lines.length > 0) yield lines.join('');
}

/** Streams `rows` into `table` with one COPY; returns the number of rows the server took. */
export async function copyRows(db: Knex, table: string, columns: readonly string[], rows: Iterable<Record<string, unknown>>): Promise<number> {
  const statement = db.raw('COPY ?? (??) FROM STDIN (FORMAT csv)', [table, [...columns]]).toQuery();
  const connection = await db.client.acquireConnection();
  try {
    const copy = connection.query(copyFrom(statement));
    await pipeline(Readable.from(csvChunks(rows, columns)), copy);
    return Number(copy.rowCount);
  } finally {
    await db.client.releaseConnection(connection);
  }
}
