/**
 * node-sql-parser, one parser per dialect family (PostgreSQL; MariaDB, which reads MySQL's
 * syntax). The dialect builds are loaded on first use: most queries never need a parser, and
 * each build is a few megabytes of generated code.
 */
import { createRequire } from 'node:module';
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
