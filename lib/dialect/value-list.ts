/**
 * `column IN (values)` for long lists. knex spells each value as a parameter of its own, which
 * PostgreSQL parses and binds one by one (and knex numbers one by one): tens of thousands of
 * them cost more than the statement's work. On PostgreSQL the list travels as one array
 * parameter, typed by the column (`column = any($1)`); MySQL and MariaDB keep the IN list.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';

export function whereValueIn<T extends Knex.QueryBuilder>(query: T, family: SqlFamily, column: string, values: readonly unknown[]): T {
  if (family === 'postgres') return query.whereRaw('?? = any(?)', [column, [...values] as Knex.RawBinding]) as T;
  return query.whereIn(column, [...values] as never[]) as T;
}
