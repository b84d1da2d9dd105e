/**
 * node-sql-parser, one parser per dialect family (PostgreSQL; MariaDB, which reads MySQL's
 * syntax). The dialect builds are loaded on first use: most queries never need a parser, and
 * each build is a few megabytes of generated code.
 */
import { createRequire } from 'node:module';
import { LRUCache } from 'lru-cache';
import type { SqlFamily } from '../config/config-types.js';

export interface SqlParser {
  astify(sql: string, options: { database: string }): unknown;
  /** `type::schema::table` for every table the statement reads or writes ('update::null::users'). */
  tableList(sql: string, options: { database: string }): string[];
}

const requireBuild = createRequire(import.meta.url);
const parsers = new Map<SqlFamily, SqlParser>();

export function parserFor(family: SqlFamily): SqlParser {
  let parser = parsers.get(family);
  if (!parser) {
    const build = requireBuild(family === 'postgres' ? 'node-sql-parser/build/postgresql' : 'node-sql-parser/build/mariadb') as {
      Parser: new () => SqlParser;
    };
    parser = new build.Parser();
    parsers.set(family, parser);
  }
  return parser;
}

/** The name node-sql-parser gives each family's dialect. */
export function parserDatabase(family: SqlFamily): string {
  return family === 'postgres' ? 'PostgresQL' : 'MariaDB';
}

/** A table a statement names, and what it does to it ('select', 'insert', 'update', ...). */
export interface NamedTable {
  operation: string;
  table: string;
}

/** Statements read before, by family and SQL: an application repeats a few shapes (values are bound). */
const listed = new LRUCache<string, { tables: readonly NamedTable[] | null }>({ max: 2000 });

/**
 * The tables a statement (in the driver's placeholders, `?` or `$1`) names, read with the parser
 * and remembered by its text; undefined when it cannot be read.
 */
export function tablesOf(family: SqlFamily, sql: string): readonly NamedTable[] | undefined {
  const id = `${family}\u0000${sql}`;
  let entry = listed.get(id);
  if (!entry) {
    entry = { tables: readTables(family, sql) };
    listed.set(id, entry);
  }
  return entry.tables ?? undefined;
}

function readTables(family: SqlFamily, sql: string): NamedTable[] | null {
  try {
    return parserFor(family)
      .tableList(sql.replace(/\$(\d+)/g, ':p$1'), { database: parserDatabase(family) })
      .map((entry) => {
        const [operation = '', , table = ''] = entry.split('::');
        return { operation: operation.toLowerCase(), table };
      });
  } catch {
    return null;
  }
}
