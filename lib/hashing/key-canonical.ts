/**
 * Shard keys canonicalised by the type of the column that holds them, so that a key routes to
 * the shard where the database finds its row. The database compares a parameter by the
 * column's type: on an integer column '001', ' 1' and '+1' all match the row 1, so they must
 * hash as 1 does; on a uuid column the upper and lower case spellings are one value.
 *
 *   integer  integers (number, bigint) as they are; strings of optional spaces, a sign and
 *            digits as the integer they spell ('007' -> 7); anything else is refused
 *   text     strings exactly, but without trailing spaces where the column's collation ignores
 *            them (MySQL's PAD SPACE collations, PostgreSQL's char(n)); numbers are refused
 *            (MySQL would compare them as numbers, matching '042' and ' 42' rows that hash
 *            elsewhere). Case-insensitive columns cannot be canonicalised by hashing and are
 *            refused where their type is learned (see engine/key-types.ts)
 *   uuid     strings in any of PostgreSQL's uuid spellings (braces, hyphens or not, any case),
 *            as the lowercase 8-4-4-4-12 form; anything else is refused
 *   binary   Uint8Array (Buffer) bytes; strings are refused
 *   other    the type-free rules of shard-key.ts
 *
 * The value that is hashed is canonical; the value sent to the database is the caller's, which
 * the database casts to the same row. Refusals are InvalidShardKeyError naming the column.
 */
import { InvalidShardKeyError } from '../errors.js';

export const KEY_TYPES = ['integer', 'text', 'uuid', 'binary', 'other'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Where a key goes, for error messages: `users.id`. */
export interface KeyColumn {
  table: string;
  column: string;
  type: KeyType;
  /** The collation compares 'a' and 'a ' as equal (text only). */
  padded?: boolean;
}

const INTEGER_TEXT = /^\s*([+-]?)0*(\d+)\s*$/;
const UUID_HEX = /^[0-9a-f]{32}$/;

/** The value to hash for `value` stored in `column` (see the table above); a column not known yet: `value` by the type-free rules. */
export function canonicalKey(value: unknown, column: KeyColumn | undefined): unknown {
  switch (column?.type) {
    case 'integer':
      return canonicalInteger(value, column);
    case 'text':
      if (typeof value === 'number' || typeof value === 'bigint') {
        throw refused(column, typeof value, `pass ${value} as the string '${value}': the column holds text`);
      }
      return column.padded && typeof value === 'string' ? value.replace(/ +$/, '') : value;
    case 'uuid':
      return canonicalUuid(value, column);
    case 'binary':
      if (typeof value === 'string') throw refused(column, 'string', 'the column holds bytes: pass a Buffer or Uint8Array');
      return value;
    default:
      return value;
  }
}

function canonicalInteger(value: unknown, column: KeyColumn): unknown {
  if (typeof value !== 'string') return value;
  const match = INTEGER_TEXT.exec(value);
  if (!match) throw refused(column, 'string', `${JSON.stringify(value.slice(0, 40))} is not an integer, and the column is`);
  const digits = match[2]!;
  return match[1] === '-' && digits !== '0' ? `-${digits}` : digits;
}

function canonicalUuid(value: unknown, column: KeyColumn): unknown {
  if (typeof value !== 'string') return value;
  const hex = value.trim().replace(/^\{(.*)\}$/, '$1').replaceAll('-', '').toLowerCase();
  if (!UUID_HEX.test(hex)) throw refused(column, 'string', `${JSON.stringify(value.slice(0, 40))} is not a uuid`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function refused(column: KeyColumn, keyType: string, detail: string): InvalidShardKeyError {
  return new InvalidShardKeyError(keyType, `${detail} (shard key ${column.table}.${column.column}, ${column.type})`);
}

/** The key type of a column from its database type name (information_schema / knex columnInfo). */
export function keyTypeOfColumn(databaseType: string): KeyType {
  const type = databaseType.toLowerCase();
  if (/^(tiny|small|medium|big)?int(eger)?\b|^(small|big)?serial$|^int[248]$/.test(type)) return 'integer';
  if (type === 'uuid') return 'uuid';
  if (/^(bytea|binary|varbinary|(tiny|medium|long)?blob)\b/.test(type)) return 'binary';
  if (/^(text|character varying|varchar|character|char|bpchar|(tiny|medium|long)text)\b/.test(type)) return 'text';
  return 'other';
}
