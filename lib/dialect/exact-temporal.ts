/**
 * Reading rows to copy them without losing what a JavaScript Date cannot hold. A Date keeps
 * milliseconds; PostgreSQL timestamps keep microseconds (now() has them), and so do MySQL's
 * DATETIME(6) and TIMESTAMP(6). A row read into Dates and written back would come out changed.
 *
 * The copy paths of migrations and rebalances (backfill, key sync, verify) read with the
 * dialect's `exactReads` query options: temporal values arrive as an ExactTemporal, a Date (so a
 * transform or a comparison treats it as one) that also carries the database's own text, which
 * is what gets written back (`writable`). Everything else reads as usual.
 */
import { createRequire } from 'node:module';
import { parse as parseArray } from 'postgres-array';

export class ExactTemporal extends Date {
  constructor(
    /** The value as the database printed it, precision included. */
    readonly text: string,
    epochMs: number,
  ) {
    super(epochMs);
  }

  /** Digits past the milliseconds ('917' of .576917), '' when there are none. */
  get belowMilliseconds(): string {
    const fraction = /\.(\d+)/.exec(this.text)?.[1] ?? '';
    return fraction.slice(3).replace(/0+$/, '');
  }
}

/** A row ready for a driver: exact temporal values as their text, which the server parses back exactly. */
export function writable<T extends Record<string, unknown>>(row: T): T {
  let copy: Record<string, unknown> | undefined;
  for (const [column, value] of Object.entries(row)) {
    const written = writableValue(value);
    if (written !== value) {
      copy ??= { ...row };
      copy[column] = written;
    }
  }
  return (copy ?? row) as T;
}

/** A value as written: an exact temporal as its text, an array of them (timestamp[]) element by element. */
function writableValue(value: unknown): unknown {
  if (value instanceof ExactTemporal) return value.text;
  if (!Array.isArray(value)) return value;
  let copy: unknown[] | undefined;
  value.forEach((element, index) => {
    const written = writableValue(element);
    if (written !== element) {
      copy ??= [...value];
      copy[index] = written;
    }
  });
  return copy ?? value;
}

/** PostgreSQL type OIDs whose JavaScript values lose precision: timestamp and timestamptz, and their arrays. */
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const TIMESTAMP_ARRAY = 1115;
const TIMESTAMPTZ_ARRAY = 1185;

/** PostgreSQL's ISO output of a timestamp: `2026-12-01 19:29:18.576917+00`, `0044-03-15 12:00:00 BC`. */
const TIMESTAMP_TEXT = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?( BC)?$/;

/**
 * The instant of a timestamp's text, in epoch ms (a zone-less one in local time, as node-postgres
 * reads it); undefined for 'infinity' and what is not a timestamp. Written here rather than taken
 * from node-postgres so that a PGlite-only kit never loads pg; the text is what gets written back.
 */
export function timestampEpochMs(text: string): number | undefined {
  return commonTimestampEpochMs(text) ?? timestampEpochMsByPattern(text);
}

const ZERO = 48;
/** The digits of text[from, to) as a number; NaN when one is not a digit. */
function digitsAt(text: string, from: number, to: number): number {
  let value = 0;
  for (let index = from; index < to; index++) {
    const digit = text.charCodeAt(index) - ZERO;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * The form nearly every value has (`2026-12-01 19:29:18.576917+00`: a four-digit year from 100,
 * the zone in whole hours or none), read by character position: copies read one per row, and
 * the pattern's match and its dozen substrings were a tenth of a backfill's CPU. Anything else
 * (BC, other zones, years below 100, more year digits, more than 6 fraction digits) is left to
 * the pattern: undefined. Exported, with the pattern's reading, for their differential test.
 */
export function commonTimestampEpochMs(text: string): number | undefined {
  if (text.length < 19 || text[4] !== '-' || text[7] !== '-' || text[10] !== ' ' || text[13] !== ':' || text[16] !== ':') return undefined;
  const year = digitsAt(text, 0, 4);
  if (!(year >= 100)) return undefined;
  const [month, day, hour, minute, second] = [digitsAt(text, 5, 7) - 1, digitsAt(text, 8, 10), digitsAt(text, 11, 13), digitsAt(text, 14, 16), digitsAt(text, 17, 19)];
  let at = 19;
  let ms = 0;
  if (text[at] === '.') {
    const start = ++at;
    while (at < text.length && text.charCodeAt(at) >= ZERO && text.charCodeAt(at) <= ZERO + 9) at++;
    // Past 6 digits (PostgreSQL prints at most 6) the pattern's float arithmetic may round up: its call.
    if (at === start || at - start > 6) return undefined;
    const msDigits = Math.min(3, at - start);
    ms = digitsAt(text, start, start + msDigits) * 10 ** (3 - msDigits);
  }
  let epochMs: number;
  if (at === text.length) {
    epochMs = new Date(year, month, day, hour, minute, second, ms).getTime();
  } else {
    const sign = text[at];
    if ((sign !== '+' && sign !== '-') || at + 3 !== text.length) return undefined;
    epochMs = Date.UTC(year, month, day, hour, minute, second, ms) - (sign === '-' ? -1 : 1) * digitsAt(text, at + 1, at + 3) * 3_600_000;
  }
  return Number.isNaN(epochMs) ? undefined : epochMs;
}

export function timestampEpochMsByPattern(text: string): number | undefined {
  const match = TIMESTAMP_TEXT.exec(text);
  if (!match) return undefined;
  const [, yearText, monthText, dayText, hourText, minuteText, secondText, fraction, sign, offsetHours, offsetMinutes, offsetSeconds, bc] = match;
  const year = bc ? 1 - Number(yearText) : Number(yearText);
  const [month, day, hour, minute, second] = [Number(monthText) - 1, Number(dayText), Number(hourText), Number(minuteText), Number(secondText)];
  const ms = fraction ? Math.floor(Number(fraction) * 1000) : 0;
  const offsetMs = sign === undefined ? 0 : ((Number(offsetHours) * 60 + Number(offsetMinutes ?? 0)) * 60 + Number(offsetSeconds ?? 0)) * (sign === '-' ? -1000 : 1000);
  // Without an intermediate Date where the year allows (Date.UTC and the Date constructor read years 0-99 as 19xx).
  if (year >= 100) {
    if (sign === undefined) return new Date(year, month, day, hour, minute, second, ms).getTime();
    return Date.UTC(year, month, day, hour, minute, second, ms) - offsetMs;
  }
  const date = new Date(0);
  if (sign === undefined) {
    date.setFullYear(year, month, day);
    date.setHours(hour, minute, second, ms);
    return date.getTime();
  }
  date.setUTCFullYear(year, month, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime() - offsetMs;
}

function exactTimestamp(text: string): unknown {
  const epochMs = timestampEpochMs(text);
  return epochMs === undefined ? text : new ExactTemporal(text, epochMs);
}

/** A timestamp[] (any dimension): elements exact, NULL elements null. */
function exactTimestampArray(text: string): unknown {
  return parseArray(text, exactTimestamp);
}

const exactPgParsers: Record<number, (text: string) => unknown> = {
  [TIMESTAMP]: exactTimestamp,
  [TIMESTAMPTZ]: exactTimestamp,
  [TIMESTAMP_ARRAY]: exactTimestampArray,
  [TIMESTAMPTZ_ARRAY]: exactTimestampArray,
};

type TypeParser = (text: string) => unknown;
/** node-postgres's type set: its global `types`, or one given as a connection's `types` option. */
export interface PgTypeSet {
  getTypeParser(oid: number, format?: string): TypeParser;
}
const requireModule = createRequire(import.meta.url);
let pgTypes: PgTypeSet | undefined;
const exactSets = new WeakMap<PgTypeSet, { types: PgTypeSet }>();

function defaultPgTypes(): PgTypeSet {
  // Called by node-postgres while it reads a result: pg is loaded by then.
  pgTypes ??= (requireModule('pg') as { types: PgTypeSet }).types;
  return pgTypes;
}

/**
 * node-postgres: a per-query type set (query config `types`) that reads timestamps exactly and
 * every other type as the connection would, its own `types` option included (a per-query set
 * replaces the connection's, so a transform still sees the values the application reads).
 */
export function postgresExactReads(connectionTypes?: PgTypeSet): { types: PgTypeSet } {
  const key = connectionTypes ?? defaultPgTypes();
  let reads = exactSets.get(key);
  if (!reads) {
    reads = { types: { getTypeParser: (oid, format) => exactPgParsers[oid] ?? key.getTypeParser(oid, format) } };
    exactSets.set(key, reads);
  }
  return reads;
}

/** PGlite: per-query `parsers` by type OID. */
export const pgliteExactReads = { parsers: exactPgParsers };

/** mysql2: a per-query `typeCast` that keeps DATETIME and TIMESTAMP text beside the Date the driver makes. */
export const mysqlExactReads = {
  typeCast(field: { type: string; string(): string | null }, next: () => unknown): unknown {
    if (field.type !== 'DATETIME' && field.type !== 'TIMESTAMP') return next();
    const text = field.string();
    if (text === null) return null;
    // The driver's own reading of the text: local time, as with mysql2's default timezone.
    const epochMs = new Date(text.replace(' ', 'T')).getTime();
    return Number.isNaN(epochMs) ? text : new ExactTemporal(text, epochMs);
  },
};
