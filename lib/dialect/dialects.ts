import type { Dialect } from '../config/config-types.js';
import type { DialectAdapter } from './dialect-adapter.js';
import { mysqlDialect } from './mysql-dialect.js';
import { pgliteDialect } from './pglite-dialect.js';
import { postgresDialect } from './postgres-dialect.js';

const ADAPTERS: Record<Dialect, DialectAdapter> = {
  postgres: postgresDialect,
  mysql: mysqlDialect,
  pglite: pgliteDialect,
};

export function dialectAdapter(dialect: Dialect): DialectAdapter {
  return ADAPTERS[dialect];
}
