/** The primary-key columns of a table, in key order, read from the database's catalog. */
import type { Knex } from 'knex';

export type PrimaryKeyReader = (db: Knex, table: string) => Promise<string[]>;

const columnsOf = (rows: unknown) => (rows as { column_name: string }[]).map((row) => String(row.column_name));

export const postgresPrimaryKey: PrimaryKeyReader = async (db, table) => {
  const result = await db.raw(
    `select a.attname as column_name
       from pg_index i
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
      where i.indrelid = to_regclass(?) and i.indisprimary
      order by array_position(i.indkey::int2[], a.attnum)`,
    [table],
  );
  return columnsOf((result as { rows: unknown[] }).rows);
};

export const mysqlPrimaryKey: PrimaryKeyReader = async (db, table) => {
  const [rows] = (await db.raw(
    `select column_name as column_name from information_schema.key_column_usage
      where table_schema = database() and table_name = ? and constraint_name = 'PRIMARY'
      order by ordinal_position`,
    [table],
  )) as [unknown[]];
  return columnsOf(rows);
};
