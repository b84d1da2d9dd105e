/**
 * How a database compares the values of one column, read from its catalog: its type, and
 * whether its collation ignores case (then no hash can route like the database compares) or
 * trailing spaces. The routing of shard keys depends on it (hashing/key-canonical.ts).
 */
import type { Knex } from 'knex';
import { rowOf } from './dialect-adapter.js';

export interface ColumnComparison {
  /** The catalog's type name: integer, bigint, text, character varying, uuid, varchar, ... */
  type: string;
  caseInsensitive: boolean;
  /** 'a' = 'a ': PostgreSQL char(n), MySQL's PAD SPACE collations. */
  padded: boolean;
  /** The collation's name, for messages. */
  collation: string | undefined;
}

export type KeyColumnReader = (db: Knex, table: string, column: string) => Promise<ColumnComparison | undefined>;

export const postgresKeyColumn: KeyColumnReader = async (db, table, column) => {
  const row = rowOf(
    await db.raw(
      `select c.data_type, c.udt_name, c.collation_name, coalesce(not coll.collisdeterministic, false) as nondeterministic
         from information_schema.columns c
         left join pg_collation coll on coll.collname = c.collation_name
        where c.table_schema = current_schema() and c.table_name = ? and c.column_name = ?`,
      [table, column],
    ),
  );
  if (!row) return undefined;
  const udt = String(row.udt_name);
  return {
    type: udt === 'bpchar' ? 'bpchar' : String(row.data_type),
    caseInsensitive: udt === 'citext' || row.nondeterministic === true,
    padded: udt === 'bpchar',
    collation: row.collation_name === null ? undefined : String(row.collation_name),
  };
};

export const mysqlKeyColumn: KeyColumnReader = async (db, table, column) => {
  const row = rowOf(
    await db.raw(
      `select data_type, collation_name from information_schema.columns
        where table_schema = database() and table_name = ? and column_name = ?`,
      [table, column],
    ),
  );
  if (!row) return undefined;
  const collation = row.collation_name ?? row.COLLATION_NAME;
  const name = collation === null || collation === undefined ? undefined : String(collation).toLowerCase();
  return {
    type: String(row.data_type ?? row.DATA_TYPE),
    caseInsensitive: name !== undefined && /_ci$|_ai_ci$/.test(name),
    // NO PAD collations: MariaDB's *_nopad_*, MySQL 8's *_0900_*; every other one pads.
    padded: name !== undefined && !/nopad|_0900_/.test(name),
    collation: name,
  };
};
