/**
 * Keyset pagination across shards: the next page is "rows after the last row seen", written as
 * a WHERE on the sort keys, never as OFFSET, so page 10 000 costs what page 1 costs. Each shard
 * returns its first `pageSize` rows past the cursor and the merge keeps the first `pageSize`
 * overall.
 *
 *   ORDER BY created_at DESC, id ASC, after (t, 42):
 *   WHERE (created_at < t) OR (created_at = t AND id > 42)
 *
 * The last sort key must be unique (a primary key) so that no row is skipped or repeated, and
 * the sort keys must be selected and non-null. The cursor is opaque (`kc1.` + base64url JSON)
 * and names the sort it belongs to, so a cursor from another ordering is refused.
 */
import type { Knex } from 'knex';
import { InvalidCursorError, UnsupportedQueryError } from '../errors.js';

export interface KeysetKey {
  column: string;
  direction?: 'asc' | 'desc';
}

export interface PageOptions {
  /** The walk's order; the last key must be unique. */
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

const PREFIX = 'kc1.';

type Encoded = { t: 'd'; v: string } | { t: 'n'; v: string } | { t: 'b'; v: string } | { t: 'j'; v: unknown };

export function applyKeyset(query: Knex.QueryBuilder, options: PageOptions): Knex.QueryBuilder {
  if (!Number.isInteger(options.pageSize) || options.pageSize < 1) {
    throw new UnsupportedQueryError('pageSize', 'pageSize must be a positive integer');
  }
  const keys = options.orderBy;
  if (keys.length === 0) throw new UnsupportedQueryError('orderBy', 'keyset pagination needs at least one sort key, the last one unique');
  if (options.cursor) whereAfter(query, keys, decodeCursor(keys, options.cursor));
  for (const key of keys) query.orderBy(key.column, key.direction ?? 'asc');
  // One row more than a page tells whether another page follows, without an empty last page.
  return query.limit(options.pageSize + 1);
}

/** The page out of the rows fetched by applyKeyset, and the cursor of the next page if there is one. */
/** Rows after `values` in the order of `keys`; a null `values` leaves the query as it is. */
export function whereAfter(query: Knex.QueryBuilder, keys: readonly KeysetKey[], values: readonly unknown[] | null): Knex.QueryBuilder {
  if (!values) return query;
  return query.where((outer) => {
    keys.forEach((key, index) => {
      outer.orWhere((inner) => {
        for (let before = 0; before < index; before++) inner.where(keys[before]!.column, values[before] as never);
        inner.where(key.column, (key.direction ?? 'asc') === 'desc' ? '<' : '>', values[index] as never);
      });
    });
  });
}

export function toPage<T extends Record<string, unknown>>(keys: readonly KeysetKey[], fetched: readonly T[], pageSize: number): Page<T> {
  const rows = fetched.slice(0, pageSize);
  return { rows, nextCursor: fetched.length > pageSize ? cursorAfter(keys, rows.at(-1)!) : null };
}

function cursorAfter(keys: readonly KeysetKey[], last: Record<string, unknown>): string {
  const values = keys.map((key) => {
    const name = key.column.slice(key.column.lastIndexOf('.') + 1);
    if (!(name in last)) throw new UnsupportedQueryError('keyset', `select the sort column "${key.column}" so that the cursor can be built`);
    const value = last[name];
    if (value === null || value === undefined) {
      throw new UnsupportedQueryError('keyset', `sort column "${key.column}" is NULL in the last row; keyset pagination needs non-null sort keys`);
    }
    return encodeValue(value);
  });
  return PREFIX + Buffer.from(JSON.stringify({ k: fingerprint(keys), v: values })).toString('base64url');
}

function decodeCursor(keys: readonly KeysetKey[], cursor: string): unknown[] {
  if (!cursor.startsWith(PREFIX)) throw new InvalidCursorError(`expected a string starting with "${PREFIX}"`);
  let payload: { k?: unknown; v?: unknown };
  try {
    payload = JSON.parse(Buffer.from(cursor.slice(PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('the payload is not base64url JSON');
  }
  if (payload.k !== fingerprint(keys)) throw new InvalidCursorError('it belongs to another sort order');
  if (!Array.isArray(payload.v) || payload.v.length !== keys.length) throw new InvalidCursorError('it has the wrong number of values');
  return (payload.v as Encoded[]).map(decodeValue);
}

function fingerprint(keys: readonly KeysetKey[]): string {
  return keys.map((key) => `${key.column} ${key.direction ?? 'asc'}`).join(',');
}

function encodeValue(value: unknown): Encoded {
  if (value instanceof Date) return { t: 'd', v: value.toISOString() };
  if (typeof value === 'bigint') return { t: 'n', v: value.toString() };
  if (Buffer.isBuffer(value)) return { t: 'b', v: value.toString('hex') };
  return { t: 'j', v: value };
}

function decodeValue(encoded: Encoded): unknown {
  switch (encoded?.t) {
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
