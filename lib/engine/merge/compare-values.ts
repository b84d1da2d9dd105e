/**
 * Orders values as the database ordered them, so that merging sorted shard results keeps the
 * single-database order. How a value compares depends on its column's class:
 *
 *   exact        integers, NUMERIC/DECIMAL: numerically, exactly, whether the driver returned a
 *                number or a string ('9223372036854775807', '12.50')
 *   approximate  REAL/DOUBLE/FLOAT: numerically
 *   other        by JavaScript type: numbers, dates by time, booleans, Buffers bytewise, strings
 *                by code point (the order of PostgreSQL's "C" collation and of binary
 *                collations; case-insensitive or locale collations can order differently)
 *
 * NULLs go first or last per sort key, as the dialect (or the query's NULLS FIRST/LAST) puts them.
 */
import type { SortKey } from '../../planner/merge-spec.js';
import { compareDecimals, isDecimalText, parseDecimal } from './decimal.js';

export type ValueClass = 'exact' | 'approximate' | 'other';

export type Row = Record<string, unknown>;
export type RowComparator = (a: Row, b: Row) => number;

export function compareValues(a: unknown, b: unknown, valueClass: ValueClass): number {
  if (valueClass !== 'other' || typeof a === 'bigint' || typeof b === 'bigint') return compareNumeric(a, b);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return Buffer.compare(a, b);
  return compareCodePoints(String(a), String(b));
}

function compareNumeric(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const left = asDecimalText(a);
  const right = asDecimalText(b);
  if (left !== undefined && right !== undefined) return compareDecimals(parseDecimal(left), parseDecimal(right));
  return Number(a) - Number(b);
}

function asDecimalText(value: unknown): string | undefined {
  const text = typeof value === 'bigint' ? value.toString() : String(value);
  return isDecimalText(text) ? text : undefined;
}

/** Code point order; JavaScript's `<` compares UTF-16 units, which differs for astral characters. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const left = a.codePointAt(index)!;
    const right = b.codePointAt(index)!;
    if (left !== right) return left - right;
    if (left > 0xffff) index++;
  }
  return a.length - b.length;
}

/** A row comparator for ORDER BY keys; `classOf` says how each key's values compare. */
export function rowComparator(keys: readonly SortKey[], classOf: (key: SortKey) => ValueClass): RowComparator {
  const resolved = keys.map((key) => ({ ...key, valueClass: classOf(key), sign: key.direction === 'desc' ? -1 : 1 }));
  return (a, b) => {
    for (const key of resolved) {
      if (key.test) {
        const order = nullTest(a[key.column], key.test) - nullTest(b[key.column], key.test);
        if (order !== 0) return order * key.sign;
        continue;
      }
      const left = a[key.column];
      const right = b[key.column];
      const leftNull = left === null || left === undefined;
      const rightNull = right === null || right === undefined;
      if (leftNull || rightNull) {
        if (leftNull && rightNull) continue;
        return leftNull === (key.nulls === 'first') ? -1 : 1;
      }
      const order = compareValues(left, right, key.valueClass);
      if (order !== 0) return order * key.sign;
    }
    return 0;
  };
}

function nullTest(value: unknown, test: 'is null' | 'is not null'): number {
  const isNull = value === null || value === undefined;
  return Number(test === 'is null' ? isNull : !isNull);
}

/** A text key equal for values the database considers equal (for GROUP BY and DISTINCT). */
export function canonicalValue(value: unknown, valueClass: ValueClass): string {
  if (value === null || value === undefined) return 'null';
  if (valueClass !== 'other') {
    const text = asDecimalText(value);
    if (text !== undefined) {
      const { units, scale } = parseDecimal(text);
      let trimmed = units;
      let digits = scale;
      while (digits > 0 && trimmed % 10n === 0n) {
        trimmed /= 10n;
        digits--;
      }
      return `n:${trimmed}e-${digits}`;
    }
  }
  if (value instanceof Date) return `d:${value.getTime()}`;
  if (Buffer.isBuffer(value)) return `b:${value.toString('hex')}`;
  return `${typeof value}:${String(value)}`;
}
