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
import pg from 'pg';

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
    if (value instanceof ExactTemporal) {
      copy ??= { ...row };
      copy[column] = value.text;
    }
  }
  return (copy ?? row) as T;
}

/** PostgreSQL type OIDs whose JavaScript values lose precision: timestamp, timestamptz, and their arrays' elements. */
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;

function exactParser(oid: number): (text: string) => unknown {
  const parse = pg.types.getTypeParser(oid, 'text') as (text: string) => unknown;
  return (text) => {
    const parsed = parse(text);
    // 'infinity' and out-of-range values are not Dates: they are kept as pg gives them.
    return parsed instanceof Date && !Number.isNaN(parsed.getTime()) ? new ExactTemporal(text, parsed.getTime()) : parsed;
  };
}

const exactPgParsers: Record<number, (text: string) => unknown> = { [TIMESTAMP]: exactParser(TIMESTAMP), [TIMESTAMPTZ]: exactParser(TIMESTAMPTZ) };

/** node-postgres: a per-query type set (query config `types`). */
export const postgresExactReads = {
  types: {
    getTypeParser: (oid: number, format?: string) => exactPgParsers[oid] ?? pg.types.getTypeParser(oid, format as 'text'),
  },
};

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
