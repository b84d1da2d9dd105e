/**
 * Comparing rows across tables and drivers: a key or a row value means the same whether the
 * driver gave `5`, `5n` or `'5'`, `'1.50'` or `1.5`. Used to match source and target rows by
 * key, and to decide whether a target row equals the transformed source row.
 */
import { ExactTemporal } from '../../dialect/exact-temporal.js';
import { isDecimalText, parseDecimal } from '../../engine/merge/decimal.js';
import type { Row } from '../../config/online-migration.js';

/** Integers already in canonical form ('0', '-12'; not '+1', '007' or '-0'). */
const PLAIN_INTEGER = /^(0|-?[1-9]\d*)$/;

export function canonical(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  // The common key types, without the BigInt arithmetic below (backfill and verify call this per row).
  if (Number.isSafeInteger(value) || typeof value === 'bigint' || (typeof value === 'string' && PLAIN_INTEGER.test(value))) return `n:${value}e-0`;
  if (typeof value === 'bigint' || typeof value === 'number' || (typeof value === 'string' && isDecimalText(value))) {
    const text = String(value);
    if (!isDecimalText(text)) return `n:${text}`;
    const { units, scale } = parseDecimal(text);
    let trimmed = units;
    let digits = scale;
    while (digits > 0 && trimmed % 10n === 0n) {
      trimmed /= 10n;
      digits--;
    }
    return `n:${trimmed}e-${digits}`;
  }
  // Past its milliseconds only where it has digits there: equal to the Date of the same instant otherwise.
  if (value instanceof ExactTemporal) return `d:${value.getTime()}${value.belowMilliseconds ? `.${value.belowMilliseconds}` : ''}`;
  if (value instanceof Date) return `d:${value.getTime()}`;
  if (Buffer.isBuffer(value)) return `b:${value.toString('hex')}`;
  if (typeof value === 'object') return `j:${JSON.stringify(value)}`;
  return `${typeof value}:${String(value)}`;
}

export function keyOf(row: Row, columns: readonly string[]): unknown[] {
  return columns.map((column) => row[column]);
}

export function keyText(key: readonly unknown[]): string {
  return key.map(canonical).join('\u0000');
}

/** True when `actual` holds every column of `expected` with an equal value. */
export function sameRow(expected: Row, actual: Row): boolean {
  return Object.keys(expected).every((column) => canonical(expected[column]) === canonical(actual[column]));
}

/** What differs, for mismatch reports: `column: expected -> actual`. */
export function describeDifference(expected: Row | undefined, actual: Row | undefined): string {
  if (!expected) return 'the row exists only in the target';
  if (!actual) return 'the row is missing from the target';
  return Object.keys(expected)
    .filter((column) => canonical(expected[column]) !== canonical(actual[column]))
    .map((column) => `${column}: ${JSON.stringify(expected[column])} -> ${JSON.stringify(actual[column])}`)
    .join(', ');
}
