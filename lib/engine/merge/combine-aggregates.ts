/**
 * Combines per-shard partial aggregates into the values one database would return.
 *
 *   COUNT      partial counts added
 *   SUM        partial sums added, NULL when every shard's sum is NULL
 *   MIN / MAX  the extreme partial, compared as the column's values compare
 *   AVG        SUM / COUNT of the partials, NULL when the count is 0
 *   DISTINCT   COUNT, SUM, AVG of the distinct non-NULL values gathered from every shard
 *
 * Types follow the driver: numbers add as numbers; strings (pg's BIGINT and NUMERIC, MySQL's
 * DECIMAL) add exactly and keep the largest scale, as the database's SUM does. An exact AVG is a
 * decimal string with the scale the database would print: PostgreSQL's division scale (at least
 * 16 significant digits), MySQL's input scale + 4 (div_precision_increment). An approximate AVG
 * (REAL/DOUBLE columns) is a number; float sums may differ from a single node's in the last bits,
 * because addition order differs.
 */
import type { SqlFamily } from '../../config/config-types.js';
import { type ValueClass, compareValues } from './compare-values.js';
import { addDecimals, type Decimal, divideDecimal, divisionScale, formatDecimal, parseDecimal } from './decimal.js';
import { type EvaluationContext, present } from './evaluate-expression.js';
import { aggregateType, type SqlType } from './expression-types.js';

/** a + b as the driver would have returned the total; NULL counts as nothing. */
export function addPartials(a: unknown, b: unknown): unknown {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const sum = addDecimals(parseDecimal(decimalText(a)), parseDecimal(decimalText(b)));
  return formatDecimal(sum);
}

function decimalText(value: unknown): string {
  return typeof value === 'bigint' ? value.toString() : String(value);
}

export function extremePartial(a: unknown, b: unknown, fn: 'min' | 'max', valueClass: ValueClass): unknown {
  if (a === null || a === undefined) return b ?? null;
  if (b === null || b === undefined) return a;
  const order = compareValues(a, b, valueClass);
  return (fn === 'min' ? order <= 0 : order >= 0) ? a : b;
}

/** The value of AVG from its merged SUM and COUNT partials. */
export function finishAverage(sum: unknown, count: unknown, valueClass: ValueClass, family: SqlFamily): unknown {
  if (sum === null || sum === undefined || Number(count) === 0) return null;
  // A float column, or an expression of unknown type the driver returned as a number (sqrt()).
  if (valueClass === 'approximate' || (valueClass === 'other' && typeof sum === 'number')) return Number(sum) / Number(count);
  const dividend = parseDecimal(decimalText(sum));
  const divisor = BigInt(decimalText(count));
  return formatDecimal(divideDecimal(dividend, divisor, divisionScale(family, dividend, divisor)));
}

/** COUNT, SUM or AVG (DISTINCT) of the distinct non-NULL values of a group's argument. */
export function finishDistinct(fn: 'count' | 'sum' | 'avg', values: readonly unknown[], argument: SqlType, context: EvaluationContext): unknown {
  if (fn === 'count') return present(BigInt(values.length), 'bigint', context);
  if (values.length === 0) return null;
  if (argument === 'float') {
    const total = values.reduce<number>((sum, value) => sum + Number(value), 0);
    return fn === 'sum' ? total : total / values.length;
  }
  const total = values.reduce<Decimal>((sum, value) => addDecimals(sum, parseDecimal(decimalText(value))), { units: 0n, scale: 0 });
  if (fn === 'avg') return finishAverage(formatDecimal(total), values.length, 'exact', context.family);
  const type = aggregateType('sum', argument, context.family);
  return present(type === 'decimal' ? total : total.units, type, context);
}
