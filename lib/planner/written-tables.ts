/**
 * The tables a SQL statement writes (insert, update, delete, replace, truncate), read with the
 * SQL parser, for the escape hatch's check (kit/escape-hatch.ts). Statements that cannot write
 * rows (selects, DDL, session settings, transaction control) are not parsed at all.
 */
import type { SqlFamily } from '../config/config-types.js';
import { tablesOf } from './sql-parser.js';

const MAY_WRITE_ROWS = /^\s*(\(\s*)?(insert|update|delete|replace|truncate|merge|with|copy|load)\b/i;
const WRITES = new Set(['insert', 'update', 'delete', 'replace', 'truncate']);

/** Tables the statement writes; `undefined` when it may write rows but cannot be read. */
export function writtenTables(family: SqlFamily, sql: string): readonly string[] | undefined {
  if (!MAY_WRITE_ROWS.test(sql)) return [];
  const named = tablesOf(family, sql);
  if (!named) return undefined;
  return [...new Set(named.filter((entry) => entry.table && WRITES.has(entry.operation)).map((entry) => entry.table))];
}
