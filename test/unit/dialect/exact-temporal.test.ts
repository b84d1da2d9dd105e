import { expect } from 'chai';
import pg from 'pg';
import { commonTimestampEpochMs, ExactTemporal, postgresExactReads, timestampEpochMs, timestampEpochMsByPattern, writable } from '../../../lib/dialect/exact-temporal.js';
import { canonical } from '../../../lib/migrations/online/row-identity.js';

const TIMESTAMPTZ = 1184;

describe('exact temporal values', () => {
  const parse = postgresExactReads().types.getTypeParser(TIMESTAMPTZ, 'text') as (text: string) => unknown;

  it('reads a PostgreSQL timestamptz as a Date of its instant that keeps the text, microseconds included', () => {
    const value = parse('2026-12-01 19:29:18.576917+00');
    expect(value).to.be.instanceOf(Date).and.instanceOf(ExactTemporal);
    expect((value as Date).toISOString()).to.equal('2026-12-01T19:29:18.576Z');
    expect((value as ExactTemporal).text).to.equal('2026-12-01 19:29:18.576917+00');
    expect((value as ExactTemporal).belowMilliseconds).to.equal('917');
  });

  it('finds the instant of every form PostgreSQL prints, as node-postgres would', () => {
    const pgParse = (oid: number, text: string) => (postgresExactReads().types.getTypeParser(oid, 'text') as (value: string) => Date)(text);
    expect(timestampEpochMs('2026-12-01 19:29:18.576917+00')).to.equal(Date.UTC(2026, 11, 1, 19, 29, 18, 576));
    expect(timestampEpochMs('2026-12-01 21:29:18+02')).to.equal(Date.UTC(2026, 11, 1, 19, 29, 18));
    expect(timestampEpochMs('2026-12-01 14:59:18.5-04:30')).to.equal(Date.UTC(2026, 11, 1, 19, 29, 18, 500));
    expect(timestampEpochMs('1900-01-01 00:00:00+00:19:32')).to.equal(Date.UTC(1900, 0, 1) - (19 * 60 + 32) * 1000);
    expect(timestampEpochMs('2026-12-01 19:29:18.0009')).to.equal(new Date(2026, 11, 1, 19, 29, 18, 0).getTime());
    const early = new Date(0);
    early.setUTCFullYear(44, 2, 15);
    expect(timestampEpochMs('0044-03-15 00:00:00+00')).to.equal(early.getTime());
    early.setUTCFullYear(-43, 2, 15);
    expect(timestampEpochMs('0044-03-15 00:00:00+00 BC')).to.equal(early.getTime());
    expect(pgParse(1184, '2026-12-01 19:29:18.576917+00').getTime()).to.equal(Date.UTC(2026, 11, 1, 19, 29, 18, 576));
    expect(timestampEpochMs('infinity')).to.equal(undefined);
  });

  it('agrees with node-postgres on the instant of each form', () => {
    const texts = ['2026-12-01 19:29:18.576917+00', '2026-12-01 21:29:18+02', '2026-12-01 14:59:18.5-04:30', '1999-12-31 23:59:59.999999+05:45', '2000-02-29 12:00:00+14'];
    for (const text of texts) expect(timestampEpochMs(text), text).to.equal((pg.types.getTypeParser(1184, 'text')(text) as Date).getTime());
    for (const text of ['2026-12-01 19:29:18.576917', '2026-03-29 02:30:00', '1970-01-01 00:00:00']) {
      expect(timestampEpochMs(text), text).to.equal((pg.types.getTypeParser(1114, 'text')(text) as Date).getTime());
    }
  });

  it('reads the common form by position exactly as the pattern and node-postgres do, on 5,000 random values and the edges', () => {
    // A 64-bit LCG in BigInt: every bit of the state matters (a Number product would lose the low ones).
    let state = 7n;
    const next = (below: number) => {
      state = (state * 6_364_136_223_846_793_005n + 1_442_695_040_888_963_407n) % 2n ** 64n;
      return Number((state >> 33n) % BigInt(below));
    };
    const pad = (value: number, width = 2) => String(value).padStart(width, '0');
    const texts: string[] = [];
    for (let index = 0; index < 5000; index++) {
      const fraction = next(7);
      const digits = fraction === 0 ? '' : `.${pad(next(10 ** fraction), fraction)}`;
      const zone = ['', '+00', '-07', '+14', '-00'][next(5)]!;
      texts.push(`${pad(100 + next(9900), 4)}-${pad(1 + next(12))}-${pad(1 + next(31))} ${pad(next(25))}:${pad(next(60))}:${pad(next(61))}${digits}${zone}`);
    }
    texts.push('2024-02-29 23:59:59.999999+00', '2023-02-29 12:00:00', '2026-12-31 24:00:00+00', '2016-12-31 23:59:60+00', '0100-01-01 00:00:00+00', '9999-12-31 23:59:59.999999');
    expect(new Set(texts.map((text) => text.slice(5, 7))).size, 'every month drawn').to.equal(12);
    for (const text of texts) {
      const byPosition = commonTimestampEpochMs(text);
      expect(byPosition, `${text}: read by position`).to.be.a('number');
      expect(byPosition, text).to.equal(timestampEpochMsByPattern(text));
      const oid = /[+-]\d\d$/.test(text) ? 1184 : 1114;
      expect(byPosition, `${text} (node-postgres)`).to.equal((pg.types.getTypeParser(oid, 'text')(text) as Date).getTime());
    }
    // Left to the pattern: other zones, BC, years below 100 or past 9999, more than 6 fraction digits, what is no timestamp.
    for (const other of ['2026-12-01 19:29:18+05:30', '2026-12-01 19:29:18+00 BC', '0044-03-15 00:00:00+00', '12026-12-01 00:00:00+00', '2026-12-01 00:00:00.99999999999999999+00']) {
      expect(commonTimestampEpochMs(other), other).to.equal(undefined);
      expect(timestampEpochMs(other), other).to.equal(timestampEpochMsByPattern(other));
    }
    for (const malformed of ['2026-1x-01 00:00:00', '2026-12-01 00:00:00.', '2026-12-01 00:00:00+1', '2026-12-01T00:00:00', '2026-12-01 00:00:00 ']) expect(timestampEpochMs(malformed), malformed).to.equal(undefined);
  });

  it('leaves other types and infinite timestamps as node-postgres reads them', () => {
    expect(postgresExactReads().types.getTypeParser(23, 'text')('42')).to.equal(42);
    expect(parse('infinity')).to.not.be.instanceOf(ExactTemporal);
  });

  it('reads timestamp arrays of any dimension exactly, NULL elements as null, and writes them back as text', () => {
    const parseArray = postgresExactReads().types.getTypeParser(1185, 'text') as (text: string) => unknown;
    const value = parseArray('{"2026-12-01 19:29:18.576917+00",NULL}') as [ExactTemporal, null];
    expect(value[0]).to.be.instanceOf(ExactTemporal);
    expect(value[0].text).to.equal('2026-12-01 19:29:18.576917+00');
    expect(value[1]).to.equal(null);
    const nested = (postgresExactReads().types.getTypeParser(1115, 'text') as (text: string) => unknown)('{{"2020-01-01 00:00:00.123456"}}');
    expect(writable({ at: value, nested })).to.deep.equal({ at: ['2026-12-01 19:29:18.576917+00', null], nested: [['2020-01-01 00:00:00.123456']] });
  });

  it("reads other types with a connection's own type set when it has one", () => {
    const own = { getTypeParser: (oid: number) => (oid === 20 ? (text: string) => BigInt(text) : pg.types.getTypeParser(oid)) };
    const reads = postgresExactReads(own);
    expect(reads.types.getTypeParser(20, 'text')('9007199254740993')).to.equal(9007199254740993n);
    expect(reads.types.getTypeParser(TIMESTAMPTZ, 'text')('2026-12-01 19:29:18.576917+00')).to.be.instanceOf(ExactTemporal);
    expect(postgresExactReads(own)).to.equal(reads);
  });

  it('writes the text back, and compares equal to a Date of the same instant only without sub-millisecond digits', () => {
    const exact = parse('2026-12-01 19:29:18.576917+00') as ExactTemporal;
    const whole = parse('2026-12-01 19:29:18.576+00') as ExactTemporal;
    const row = { id: 1, created_at: exact };
    expect(writable(row)).to.deep.equal({ id: 1, created_at: '2026-12-01 19:29:18.576917+00' });
    expect(writable({ id: 1 })).to.deep.equal({ id: 1 });
    expect(canonical(whole)).to.equal(canonical(new Date('2026-12-01T19:29:18.576Z')));
    expect(canonical(exact)).to.not.equal(canonical(whole));
    expect(canonical(exact)).to.equal(canonical(parse('2026-12-01 19:29:18.576917+00')));
  });
});
