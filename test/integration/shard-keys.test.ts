import { expect } from 'chai';
import { ConfigError, createShardKit, ShardKitError, type ShardKit } from '../../lib/index.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

/**
 * A fuzz of shard keys of every JavaScript type against the database's own answer: each key is
 * used in a point read, an IN list and an update through shardkit, and the same statement is run
 * on every shard directly (the union is what one unsharded database holds). Each outcome is a
 * typed error, the database's answer, or anything else, which must never happen: a silent miss,
 * a wrong count, an untyped error.
 */
const KEYS: [string, unknown][] = [
  ...[1, 2, 0, -1, 1.0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e21, Number.MIN_VALUE].map(
    (value): [string, unknown] => [`number ${value}`, value],
  ),
  ...[1n, 2n ** 63n - 1n, 2n ** 64n, -5n].map((value): [string, unknown] => [`bigint ${value}`, value]),
  ...['1', '01', '001', ' 1', '1 ', '+1', '-1', '1.0', '1e0', '0x1', 'abc', '', ' ', '١', '99999999999999999999', '9223372036854775807', '9223372036854775808', '1; drop table users', '1\u0000'].map(
    (value): [string, unknown] => [`string ${JSON.stringify(value)}`, value],
  ),
  ['null', null],
  ['undefined', undefined],
  ['true', true],
  ['false', false],
  ['object', {}],
  ['array', []],
  ['array [1]', [1]],
  ['object {id}', { id: 1 }],
  ['Buffer "1"', Buffer.from('1')],
  ['Uint8Array [1]', new Uint8Array([1])],
  ['Date', new Date(0)],
  ['function', () => 1],
];

const LISTS: [string, unknown[]][] = [
  ["['01', '02']", ['01', '02']],
  ["[1, '2', ' 3']", [1, '2', ' 3']],
  ['[]', []],
  ['[null]', [null]],
  ["['abc']", ['abc']],
  ['[1, 1n, "1"]', [1, 1n, '1']],
];

type Outcome = 'typed error' | 'database answer' | 'anything else';

for (const target of TARGETS) {
  describe(`shard keys of every type on ${target.name}`, function () {
    this.timeout(120_000);
    let kit: ShardKit;
    const counts: Record<Outcome, number> = { 'typed error': 0, 'database answer': 0, 'anything else': 0 };
    const wrong: string[] = [];

    before(async () => {
      kit = await openFreshKit(target);
      await kit.table('users').insert(Array.from({ length: 20 }, (_, index) => ({ id: index + 1, name: `user ${index + 1}`, email: `u${index + 1}@example.com` })));
    });

    after(async () => {
      console.log(`      ${target.name}: ${JSON.stringify(counts)} over ${KEYS.length * 3 + LISTS.length * 2} statements`);
      await kit?.close();
    });

    /** What one database holds for `where`: the union over every shard, or 'error' if the database refuses it. */
    async function oracle(where: (query: ReturnType<ShardKit['forShard']>) => Promise<unknown[]>): Promise<string[] | 'error'> {
      const ids: string[] = [];
      let refused = 0;
      for (const shard of kit.shardNames) {
        try {
          ids.push(...(await where(kit.forShard(shard))).map((row) => String((row as { id: unknown }).id)));
        } catch {
          refused++;
        }
      }
      return refused === kit.shardNames.length ? 'error' : ids.sort();
    }

    async function judge(label: string, expected: string[] | 'error', actual: () => Promise<string[] | number>): Promise<void> {
      let outcome: Outcome;
      try {
        const got = await actual();
        const matches = typeof got === 'number' ? expected !== 'error' && got === expected.length : expected !== 'error' && JSON.stringify([...got].sort()) === JSON.stringify(expected);
        outcome = matches ? 'database answer' : 'anything else';
        if (!matches) wrong.push(`${label}: got ${JSON.stringify(got)}, the database has ${JSON.stringify(expected)}`);
      } catch (error) {
        outcome = error instanceof ShardKitError ? 'typed error' : 'anything else';
        if (outcome === 'anything else') wrong.push(`${label}: untyped ${(error as Error)?.constructor?.name}: ${String((error as Error)?.message).slice(0, 120)}`);
      }
      counts[outcome]++;
    }

    it('answers every key as the database would, or refuses it with a typed error', async () => {
      for (const [label, key] of KEYS) {
        const expected = await oracle((db) => db('users').where('id', key as never).select('id'));
        await judge(`${label} first`, expected, async () => {
          const row = await kit.table('users').where('id', key as never).first();
          return row ? [String(row.id)] : [];
        });
        await judge(`${label} whereIn`, expected, async () => (await kit.table('users').whereIn('id', [key] as never[]).select('id')).map((row: { id: unknown }) => String(row.id)));
        await judge(`${label} update`, expected, async () => Number(await kit.table('users').where('id', key as never).update({ name: 'fuzzed' })));
      }
      for (const [label, list] of LISTS) {
        const expected = await oracle((db) => db('users').whereIn('id', list as never[]).select('id'));
        await judge(`whereIn ${label}`, expected, async () => (await kit.table('users').whereIn('id', list as never[]).select('id')).map((row: { id: unknown }) => String(row.id)));
        await judge(`delete-free update ${label}`, expected, async () => Number(await kit.table('users').whereIn('id', list as never[]).update({ name: 'fuzzed' })));
      }
      expect(wrong, wrong.join('\n')).to.deep.equal([]);
      expect(counts['database answer']).to.be.greaterThan(20);
    });

    it('never lets a statement change a shard key', async () => {
      const refusals = [
        () => kit.table('users').where('id', 3).increment('id', 1),
        () => kit.table('users').where('id', 3).decrement('id', 1),
        () => kit.table('users').where('id', 3).update({ id: kit.forShard(kit.shardNames[0]!).raw('id + 100') }),
        () => kit.table('users').whereIn('id', [3, 4, 5, 6, 7, 8]).update({ id: 3 }),
      ];
      for (const statement of refusals) {
        const error = await statement().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).to.have.property('code', 'SHARD_KEY_UPDATE');
      }
      // Every row still sits where its key says.
      for (const shard of kit.shardNames) {
        for (const row of await kit.forShard(shard)('users').select('id')) expect(kit.shardFor(String(row.id)), `row ${row.id}`).to.equal(shard);
      }
      expect(Number((await kit.table('users').where('id', 3).first()).id)).to.equal(3);
    });

    it('routes text keys exactly, uuid keys in any spelling, and refuses a case-insensitive key column', async () => {
      const config = { ...target.config, tables: { ...target.config.tables, sk_codes: { shardKey: 'code' }, sk_things: { shardKey: 'id' } } };
      const typed = await createShardKit(config);
      const mysql = target.name === 'mariadb cluster';
      try {
        for (const shard of typed.shardNames) {
          const db = typed.forShard(shard);
          await db.schema.dropTableIfExists('sk_codes');
          await db.schema.dropTableIfExists('sk_things');
          // The database's default collation: case-insensitive on MariaDB (utf8mb4_unicode_ci), exact on PostgreSQL.
          await db.schema.createTable('sk_codes', (table) => {
            table.string('code', 40).primary();
          });
          await db.schema.createTable('sk_things', (table) => {
            if (mysql) table.string('id', 36).collate('utf8mb4_bin').primary();
            else table.uuid('id').primary();
          });
        }
        if (mysql) {
          const error = await typed.table('sk_codes').where('code', 'Ab').first().catch((caught: unknown) => caught);
          expect(error).to.be.instanceOf(ConfigError);
          expect((error as Error).message).to.match(/case-insensitive|compares case-insensitively/);
        } else {
          await typed.table('sk_codes').insert({ code: 'Ab' });
          expect(await typed.table('sk_codes').where('code', 'Ab').first()).to.deep.equal({ code: 'Ab' });
          expect(await typed.table('sk_codes').where('code', 'ab').first()).to.equal(undefined);
          const refusal = await typed.table('sk_codes').where('code', 42).first().catch((caught: unknown) => caught);
          expect(refusal).to.have.property('code', 'INVALID_SHARD_KEY');
          const id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
          await typed.table('sk_things').insert({ id: id.toUpperCase() });
          for (const spelling of [id, id.toUpperCase(), `{${id}}`, id.replaceAll('-', '')]) {
            expect(await typed.table('sk_things').where('id', spelling).first(), spelling).to.deep.equal({ id });
          }
        }
      } finally {
        for (const shard of typed.shardNames) {
          await typed.forShard(shard).schema.dropTableIfExists('sk_codes');
          await typed.forShard(shard).schema.dropTableIfExists('sk_things');
        }
        await typed.close();
      }
    });
  });
}
