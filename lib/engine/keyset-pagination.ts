/**
 * Keyset pagination across shards: the next page is "rows after the last row seen", written as
 * a WHERE on the sort keys, never as OFFSET, so page 10 000 costs what page 1 costs. Each shard
 * returns its first `pageSize` rows past the cursor and the merge keeps the first `pageSize`
 * overall.
 *
 *   ORDER BY created_at DESC, id ASC, after (t, 42):
 *   WHERE (created_at < t) OR (created_at = t AND id > 42)
 *
 * Sort keys may be nullable. NULLs sit where the dialect's ORDER BY puts them by default:
 * PostgreSQL sorts NULL above every value (ASC: nulls last, DESC: nulls first), MySQL and
 * MariaDB below (ASC: nulls first, DESC: nulls last). "After v" on a key then also admits its
 * NULLs when they come after the values, "after NULL" is IS NOT NULL when NULLs come first and
 * nothing when they come last, and equality with NULL is IS NULL. On PostgreSQL:
 *
 *   ORDER BY score ASC, id ASC, after (7, 42):      WHERE (score > 7 OR score IS NULL) OR (score = 7 AND id > 42)
 *   ORDER BY score ASC, id ASC, after (NULL, 42):   WHERE (score IS NULL AND id > 42)
 *   ORDER BY score DESC, id ASC, after (NULL, 42):  WHERE (score IS NOT NULL) OR (score IS NULL AND id > 42)
 *
 * The last sort key must be unique and non-null (a primary key) so that no row is skipped or
 * repeated; that is the caller's responsibility. The sort keys must be selected. The cursor is
 * opaque (`kc2.` + base64url JSON, NULLs included; `kc1.` cursors, which never hold a NULL, are
 * still read) and names the sort it belongs to, so a cursor from another ordering is refused.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { InvalidCursorError, UnsupportedQueryError } from '../errors.js';

export interface KeysetKey {
  column: string;
  direction?: 'asc' | 'desc';
}

export interface PageOptions {
  /**
   * The walk's order; the last key must be unique and non-null (a primary key), which is the
   * caller's to ensure. Other keys may be nullable: NULLs sort as the dialect sorts them.
   */
  orderBy: KeysetKey[];
  pageSize: number;
  /** The previous page's `nextCursor`; omit (or null) for the first page. */
  cursor?: string | null;
}

export interface Page<T> {
  rows: T[];
  /** Pass to the next call; null after the last page. */
  nextCursor: string | null;
}

const PREFIX = 'kc2.';
/** The format before NULLs could be carried; its values are never NULL, so it reads the same. */
const LEGACY_PREFIX = 'kc1.';

type Encoded = { t: 'd'; v: string } | { t: 'n'; v: string } | { t: 'b'; v: string } | { t: 'j'; v: unknown } | { t: 'z' };

/**
 * Adds the cursor's WHERE, the ORDER BY and the LIMIT of one page. `family` says where the
 * database's ORDER BY puts NULLs, which the cursor's WHERE must agree with.
 */
export function applyKeyset(query: Knex.QueryBuilder, options: PageOptions, family: SqlFamily): Knex.QueryBuilder {
  if (!Number.isInteger(options.pageSize) || options.pageSize < 1) {
    throw new UnsupportedQueryError('pageSize', 'pageSize must be a positive integer');
  }
  const keys = options.orderBy;
  if (keys.length === 0) throw new UnsupportedQueryError('orderBy', 'keyset pagination needs at least one sort key, the last one unique');
  if (options.cursor) whereAfter(query, keys, decodeCursor(keys, options.cursor), family);
  for (const key of keys) query.orderBy(key.column, key.direction ?? 'asc');
  // One row more than a page tells whether another page follows, without an empty last page.
  return query.limit(options.pageSize + 1);
}

/** Whether the dialect's default ORDER BY puts NULLs after every value of a key sorted in `direction`. */
export function nullsLast(family: SqlFamily, direction: 'asc' | 'desc' = 'asc'): boolean {
  // PostgreSQL: NULL is larger than every value; MySQL and MariaDB: smaller.
  return (family === 'postgres') === (direction === 'asc');
}

/**
 * Rows after `values` in the order of `keys`; a null `values` leaves the query as it is. With a
 * `family`, keys and values may be NULL, ordered as that family's ORDER BY orders them; without
 * one the keys are taken as non-null (primary keys, shard keys) and a NULL value is refused.
 */
export function whereAfter(query: Knex.QueryBuilder, keys: readonly KeysetKey[], values: readonly unknown[] | null, family?: SqlFamily): Knex.QueryBuilder {
  if (!values) return query;
  // One disjunct per key: the keys before it equal, it strictly after its value.
  const disjuncts: ((inner: Knex.QueryBuilder) => void)[] = [];
  keys.forEach((key, index) => {
    const value = values[index];
    const direction = key.direction ?? 'asc';
    const operator = direction === 'desc' ? '<' : '>';
    if (isNull(value) && family === undefined) {
      throw new UnsupportedQueryError('keyset', `sort column "${key.column}" is NULL; this walk needs non-null keys`);
    }
    const last = family !== undefined && nullsLast(family, direction);
    // Nothing sorts after NULL when NULLs come last.
    if (isNull(value) && last) return;
    disjuncts.push((inner) => {
      for (let before = 0; before < index; before++) {
        const prior = keys[before]!;
        if (isNull(values[before])) inner.whereNull(prior.column);
        else inner.where(prior.column, values[before] as never);
      }
      if (isNull(value)) inner.whereNotNull(key.column);
      // The last key is unique and non-null: admitting its NULLs would only cost the index range.
      else if (last && index < keys.length - 1) inner.where((either) => either.where(key.column, operator, value as never).orWhereNull(key.column));
      else inner.where(key.column, operator, value as never);
    });
  });
  // Every key NULL with NULLs last: the cursor is past the last row.
  if (disjuncts.length === 0) return query.whereRaw('1 = 0');
  return query.where((outer) => {
    for (const disjunct of disjuncts) outer.orWhere(disjunct);
  });
}

/** The page out of the rows fetched by applyKeyset, and the cursor of the next page if there is one. */
export function toPage<T extends Record<string, unknown>>(keys: readonly KeysetKey[], fetched: readonly T[], pageSize: number): Page<T> {
  const rows = fetched.slice(0, pageSize);
  return { rows, nextCursor: fetched.length > pageSize ? cursorAfter(keys, rows.at(-1)!) : null };
}

function cursorAfter(keys: readonly KeysetKey[], last: Record<string, unknown>): string {
  const values = keys.map((key) => {
    const name = key.column.slice(key.column.lastIndexOf('.') + 1);
    if (!(name in last)) throw new UnsupportedQueryError('keyset', `select the sort column "${key.column}" so that the cursor can be built`);
    if (key === keys.at(-1) && isNull(last[name])) {
      throw new UnsupportedQueryError('keyset', `the last sort key "${key.column}" is NULL in a row; it must be unique and non-null (a primary key)`);
    }
    return encodeValue(last[name]);
  });
  return PREFIX + Buffer.from(JSON.stringify({ k: fingerprint(keys), v: values })).toString('base64url');
}

function decodeCursor(keys: readonly KeysetKey[], cursor: string): unknown[] {
  const prefix = [PREFIX, LEGACY_PREFIX].find((candidate) => cursor.startsWith(candidate));
  if (!prefix) throw new InvalidCursorError(`expected a string starting with "${PREFIX}"`);
  let payload: { k?: unknown; v?: unknown };
  try {
    payload = JSON.parse(Buffer.from(cursor.slice(prefix.length), 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('the payload is not base64url JSON');
  }
  if (payload === null || typeof payload !== 'object') throw new InvalidCursorError('the payload is not an object');
  if (payload.k !== fingerprint(keys)) throw new InvalidCursorError('it belongs to another sort order');
  if (!Array.isArray(payload.v) || payload.v.length !== keys.length) throw new InvalidCursorError('it has the wrong number of values');
  return (payload.v as Encoded[]).map(decodeValue);
}

function fingerprint(keys: readonly KeysetKey[]): string {
  return keys.map((key) => `${key.column} ${key.direction ?? 'asc'}`).join(',');
}

function isNull(value: unknown): boolean {
  return value === null || value === undefined;
}

function encodeValue(value: unknown): Encoded {
  if (isNull(value)) return { t: 'z' };
  if (value instanceof Date) return { t: 'd', v: value.toISOString() };
  if (typeof value === 'bigint') return { t: 'n', v: value.toString() };
  if (Buffer.isBuffer(value)) return { t: 'b', v: value.toString('hex') };
  return { t: 'j', v: value };
}

function decodeValue(encoded: Encoded): unknown {
  switch (encoded?.t) {
    case 'z':
      return null;
    case 'd':
      return new Date(encoded.v);
    case 'n':
      return BigInt(encoded.v);
    case 'b':
      return Buffer.from(encoded.v, 'hex');
    case 'j':
      return encoded.v;
    default:
      throw new InvalidCursorError('a value has an unknown encoding');
  }
}
