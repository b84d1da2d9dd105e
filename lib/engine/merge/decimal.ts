/**
 * Exact decimal arithmetic on the strings drivers return for NUMERIC/DECIMAL and BIGINT
 * values ('-12.50', '9223372036854775807'), so that merged SUMs and AVGs carry the same digits a
 * single database would print. A decimal is an unscaled BigInt and a scale:
 * '-12.50' = { units: -1250n, scale: 2 }.
 */
import type { SqlFamily } from '../../config/config-types.js';

export interface Decimal {
  units: bigint;
  scale: number;
}

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

export function isDecimalText(value: string): boolean {
  return DECIMAL_TEXT.test(value) && /\d/.test(value);
}

export function parseDecimal(value: string | bigint): Decimal {
  if (typeof value === 'bigint') return { units: value, scale: 0 };
  const text = value.trim();
  const match = DECIMAL_TEXT.exec(text);
  if (!match || !/\d/.test(text)) throw new RangeError(`not a decimal number: ${text}`);
  const [, sign = '', whole = '', fraction = ''] = match;
  const units = BigInt(`${whole || '0'}${fraction}`);
  return { units: sign === '-' ? -units : units, scale: fraction.length };
}

function rescale(value: Decimal, scale: number): bigint {
  return value.units * 10n ** BigInt(scale - value.scale);
}

export function addDecimals(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) + rescale(b, scale), scale };
}

export function compareDecimals(a: Decimal, b: Decimal): number {
  const scale = Math.max(a.scale, b.scale);
  const difference = rescale(a, scale) - rescale(b, scale);
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}

export function formatDecimal(value: Decimal): string {
  const negative = value.units < 0n;
  const digits = (negative ? -value.units : value.units).toString().padStart(value.scale + 1, '0');
  const whole = digits.slice(0, digits.length - value.scale);
  const fraction = digits.slice(digits.length - value.scale);
  return `${negative ? '-' : ''}${whole}${value.scale > 0 ? `.${fraction}` : ''}`;
}

export function negateDecimal(value: Decimal): Decimal {
  return { units: -value.units, scale: value.scale };
}

export function multiplyDecimals(a: Decimal, b: Decimal): Decimal {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

/** `dividend / divisor` rounded half away from zero to `scale` digits (as both databases round). */
export function divideDecimal(dividend: Decimal, divisor: Decimal | bigint, scale: number): Decimal {
  const by = asDecimal(divisor);
  // dividend / by = (d.units / 10^d.scale) / (b.units / 10^b.scale); scaled by 10^scale.
  const exponent = by.scale + scale - dividend.scale;
  const numerator = dividend.units * 10n ** BigInt(Math.max(0, exponent));
  const denominator = by.units * 10n ** BigInt(Math.max(0, -exponent));
  let quotient = numerator / denominator;
  const remainder = numerator % denominator;
  const absolute = (value: bigint) => (value < 0n ? -value : value);
  if (2n * absolute(remainder) >= absolute(denominator)) quotient += (numerator < 0n) !== (denominator < 0n) ? -1n : 1n;
  return { units: quotient, scale };
}

/** `a % b` with the sign of `a` and the larger scale, as NUMERIC and DECIMAL compute it. */
export function remainderDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) % rescale(b, scale), scale };
}

function asDecimal(value: Decimal | bigint): Decimal {
  return typeof value === 'bigint' ? { units: value, scale: 0 } : value;
}

const MYSQL_DIV_PRECISION_INCREMENT = 4;
const MYSQL_MAX_SCALE = 30;

/** The scale a decimal division gets: PostgreSQL's select_div_scale, MySQL's dividend scale + div_precision_increment. */
export function divisionScale(family: SqlFamily, dividend: Decimal, divisor: Decimal | bigint): number {
  return family === 'postgres' ? postgresDivisionScale(dividend, divisor) : Math.min(dividend.scale + MYSQL_DIV_PRECISION_INCREMENT, MYSQL_MAX_SCALE);
}

/**
 * The scale PostgreSQL gives `numeric / numeric` (select_div_scale in numeric.c): at least 16
 * significant digits, and no fewer than either operand's scale. Weights count base-10000
 * digits, as PostgreSQL stores numerics.
 */
export function postgresDivisionScale(dividend: Decimal, divisor: Decimal | bigint): number {
  const by = asDecimal(divisor);
  const [weight1, first1] = base10000Lead(dividend);
  const [weight2, first2] = base10000Lead(by);
  let quotientWeight = weight1 - weight2;
  if (first1 <= first2) quotientWeight--;
  return Math.min(1000, Math.max(16 - quotientWeight * 4, dividend.scale, by.scale, 0));
}

/** Weight and value of the first non-zero base-10000 digit (0, 0 for zero). */
function base10000Lead(value: Decimal): [number, number] {
  const digits = (value.units < 0n ? -value.units : value.units).toString();
  if (/^0*$/.test(digits)) return [0, 0];
  const whole = digits.length > value.scale ? digits.slice(0, digits.length - value.scale) : '';
  const fraction = digits.slice(Math.max(0, digits.length - value.scale)).padStart(value.scale, '0');
  if (whole !== '' && !/^0*$/.test(whole)) {
    const significant = whole.replace(/^0+/, '');
    const leadLength = significant.length % 4 || 4;
    return [Math.floor((significant.length - 1) / 4), Number(significant.slice(0, leadLength))];
  }
  const groups = fraction.padEnd(Math.ceil(fraction.length / 4) * 4, '0').match(/.{4}/g) ?? [];
  const index = groups.findIndex((group) => Number(group) !== 0);
  return [-(index + 1), Number(groups[index])];
}
