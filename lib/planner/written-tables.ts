/**
 * The tables a SQL statement writes (insert, update, delete, replace, truncate), read with the
 * SQL parser, for the escape hatch's check (kit/escape-hatch.ts). Statements that cannot write
 * rows (selects, DDL, session settings, transaction control) are not parsed at all.
 */
import { LRUCache } from 'lru-cache';
import type { SqlFamily } from '../config/config-types.js';
import { parserDatabase, parserFor } from './sql-parser.js';

const MAY_WRITE_ROWS = /^\s*(\(\s*)?(insert|update|delete|replace|truncate|merge|with|copy|load)\b/i;
const WRITES = new Set(['insert', 'update', 'delete', 'replace', 'truncate']);

/** Parsed statements by family and SQL: an application repeats a few statement shapes (values are bound). */
const parsed = new LRUCache<string, { tables: readonly string[] | null }>({ max: 2000 });

/** Tables the statement writes; `undefined` when it may write rows but cannot be read. */
export function writtenTables(family: SqlFamily, sql: string): readonly string[] | undefined {
  if (!MAY_WRITE_ROWS.test(sql)) return [];
  const id = `${family}\u0000${sql}`;
  let entry = parsed.get(id);
  if (!entry) {
    entry = { tables: parseWrittenTables(family, sql) ?? null };
    parsed.set(id, entry);
  }
  return entry.tables ?? undefined;
}

function parseWrittenTables(family: SqlFamily, sql: string): string[] | undefined {
  try {
    const listed = parserFor(family).tableList(sql.replace(/\$(\d+)/g, ':p$1'), { database: parserDatabase(family) });
    const written = listed.flatMap((entry) => {
      const [type, , table] = entry.split('::');
      return type && table && WRITES.has(type.toLowerCase()) ? [table] : [];
    });
    return [...new Set(written)];
  } catch {
    return undefined;
  }
}
