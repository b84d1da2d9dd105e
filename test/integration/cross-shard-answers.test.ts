/**
 * The cross-shard answers that were once wrong, each against one unsharded copy of the same
 * rows (the oracle): a raw select alias in ORDER BY, a raw aggregate without GROUP BY, a joined
 * table's sort column under a `*`, an aggregate whose shard-key condition admits no key, and
 * HAVING on a select alias (which PostgreSQL itself refuses). Queries use table aliases so the
 * same text runs on the shards and on the oracle's differently named tables.
 */
import { expect } from 'chai';
import type { Knex } from 'knex';
import { ShardKitError, type ShardKit } from '../../lib/index.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const USERS = 120;
const ORDERS = 600;

/** A table by its sharded name ('orders as o'), on the kit or on the oracle; `tableName` maps a name the same way. */
type Source = ((table: string) => Knex.QueryBuilder) & { tableName(table: string): string };
type Build = (table: Source, raw: Knex['raw']) => Knex.QueryBuilder | Promise<unknown>;

/** knex's whereColumn(), which its type declarations lack. */
function withColumn(query: Knex.QueryBuilder, left: string, right: string): Knex.QueryBuilder {
  return (query as unknown as { whereColumn(a: string, b: string): Knex.QueryBuilder }).whereColumn(left, right);
}

for (const target of TARGETS) {
  describe(`cross-shard answers equal one database's on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    let oracle: Knex;

    before(async () => {
      kit = await openFreshKit(target);
      // The global table (countries) lives on the global shard, so the oracle's tables live there too.
      oracle = kit.forShard(kit.config.globalShard);
      for (const table of ['orders_oracle', 'users_oracle']) await oracle.schema.dropTableIfExists(table);
      await oracle.schema.createTable('users_oracle', (table) => {
        table.bigInteger('id').primary();
        table.string('name', 200).notNullable();
        table.string('email', 320).notNullable();
        table.timestamp('created_at').notNullable();
      });
      await oracle.schema.createTable('orders_oracle', (table) => {
        table.bigInteger('user_id').notNullable();
        table.bigInteger('id').notNullable();
        table.integer('amount_cents').notNullable();
        table.string('status', 20).notNullable();
        table.timestamp('created_at').notNullable();
        table.primary(['user_id', 'id']);
      });
      // Names tie often and created_at runs against id, so a sort by the wrong column shows.
      const users = Array.from({ length: USERS }, (_, index) => ({
        id: index + 1,
        name: `user ${String((index * 7) % 13).padStart(2, '0')}`,
        email: `u${index + 1}@example.com`,
        created_at: new Date(Date.UTC(2026, 0, 1) + (USERS - index) * 3_600_000),
      }));
      const orders = Array.from({ length: ORDERS }, (_, index) => ({
        user_id: 1 + ((index * 37) % USERS),
        id: index + 1,
        amount_cents: ((index * 7919) % 5000) - 500,
        status: ['new', 'paid', 'shipped', 'void'][index % 4]!,
        created_at: new Date(Date.UTC(2026, 1, 1) + index * 60_000),
      }));
      await kit.table('countries').insert([
        { code: 'aa', name: 'user 03' },
        { code: 'bb', name: 'user 07' },
      ]);
      await kit.table('users').insert(users);
      await oracle('users_oracle').insert(users);
      for (let start = 0; start < ORDERS; start += 200) {
        await kit.table('orders').insert(orders.slice(start, start + 200));
        await oracle('orders_oracle').insert(orders.slice(start, start + 200));
      }
    });

    after(async () => {
      if (!kit) return;
      for (const table of ['orders_oracle', 'users_oracle']) await oracle.schema.dropTableIfExists(table);
      await oracle('countries').delete();
      await kit.close();
    });

    /** The query run through the kit and on the oracle's tables; both results, or both errors. */
    async function both(build: Build) {
      const sharded = Object.assign((name: string) => kit.table(name), { tableName: (table: string) => table });
      const oracleName = (table: string) => table.replace(/^(users|orders)\b/, '$1_oracle');
      const single = Object.assign((name: string) => oracle(oracleName(name)), { tableName: oracleName });
      const settle = (promise: unknown) => Promise.resolve(promise).then((value) => ({ value }), (error: Error) => ({ error }));
      const [actual, expected] = await Promise.all([settle(build(sharded, oracle.raw.bind(oracle))), settle(build(single, oracle.raw.bind(oracle)))]);
      return { actual, expected };
    }

    async function expectSame(build: Build) {
      const { actual, expected } = await both(build);
      if ('error' in expected) throw new Error(`the oracle failed: ${expected.error.message}`);
      if ('error' in actual) throw new Error(`the kit failed: ${actual.error.message}`);
      expect(actual.value).to.deep.equal(expected.value);
      return actual.value;
    }

    it('orders by the alias of a raw select expression', async () => {
      const rows = await expectSame((table, raw) =>
        table('orders as o').select('id', 'amount_cents', raw('coalesce(amount_cents, 0) * (id % 3) as line_total')).orderBy('line_total', 'desc').orderBy('id').limit(6),
      );
      expect(rows).to.have.length(6);
    });

    it('merges a raw aggregate without GROUP BY into the one row a database returns', async () => {
      const [row] = (await expectSame((table, raw) =>
        table('orders as o').select(raw('count(distinct user_id) as buyers'), raw('sum(distinct amount_cents) as s'), raw('count(*) as n')),
      )) as Record<string, unknown>[];
      expect(Number(row!.buyers)).to.equal(USERS);
    });

    it("sorts a join's orders.* by a users column the star does not carry", async () => {
      await expectSame((table) =>
        table('orders as o').join(table.tableName('users as u'), 'u.id', 'o.user_id').select('o.*').orderBy('u.created_at').orderBy('o.id').limit(25),
      );
      await expectSame((table) =>
        table('orders as o').join(table.tableName('users as u'), 'u.id', 'o.user_id').select('o.id', 'o.user_id').orderBy('u.name', 'desc').orderBy('o.id').limit(25),
      );
    });

    it('answers an aggregate whose shard-key condition admits no key with one row', async () => {
      const first = await expectSame((table) => table('orders as o').whereIn('user_id', []).count('* as n').first());
      expect(Number((first as { n: unknown }).n)).to.equal(0);
      const [sums] = (await expectSame((table) => table('orders as o').where('user_id', 1).where('user_id', 2).sum('amount_cents as s').max('id as m'))) as Record<string, unknown>[];
      expect(sums).to.deep.equal({ s: null, m: null });
    });

    it('treats HAVING on a select alias as the dialect does (PostgreSQL refuses it, MySQL answers)', async () => {
      const { actual, expected } = await both((table) => table('orders as o').select('status').count('* as n').groupBy('status').having('n', '>', 100).orderBy('status'));
      if ('error' in expected) {
        expect(target.config.shards[0]!.primary.dialect).to.not.equal('mysql');
        expect('error' in actual && actual.error instanceof ShardKitError, 'the kit refuses with a typed error too').to.equal(true);
      } else {
        expect('value' in actual && actual.value).to.deep.equal(expected.value);
      }
    });

    it('evaluates havingRaw over aggregate expressions, and COUNT DISTINCT per group', async () => {
      await expectSame((table) =>
        table('orders as o')
          .select('status')
          .countDistinct('user_id as buyers')
          .sum('amount_cents as total')
          .groupBy('status')
          .havingRaw('count(*) > ? and sum(amount_cents) / count(*) >= ?', [10, 100])
          .orderBy('status'),
      );
    });

    it('runs co-located IN and EXISTS subqueries (correlated on the shard keys) within each shard', async () => {
      await expectSame((table) => table('users as u').whereIn('id', table('orders as o').select('user_id').where('status', 'void')).orderBy('id'));
      await expectSame((table) =>
        table('users as u').whereIn('id', table('orders as o').select('user_id').groupBy('user_id').havingRaw('sum(amount_cents) > ?', [12_000])).orderBy('id'),
      );
      await expectSame((table) =>
        table('users as u').whereExists(withColumn(table('orders as o').select(1), 'o.user_id', 'u.id').where('amount_cents', '>', 4000)).orderBy('id'),
      );
      await expectSame((table) => table('users as u').whereNotExists(table('orders as o').select(1).whereRaw('o.user_id = u.id and o.status = ?', ['new'])).count('* as n'));
    });

    it('evaluates a subquery that does not refer to the outer query first and inlines its values', async () => {
      await expectSame((table) => table('users as u').whereIn('name', table('countries').select('name')).orderBy('id'));
      await expectSame((table) => table('orders as o').whereIn('id', table('users as u').select('id').where('name', 'user 05')).orderBy('id'));
      await expectSame((table) => table('orders as o').whereNotIn('id', table('users as u').select('id')).count('* as n'));
      await expectSame((table) => table('users as u').whereExists(table('countries').select('code').where('code', 'bb')).count('* as n'));
    });

    it('refuses subqueries it cannot answer exactly, naming them', async () => {
      const refusals = await Promise.all([
        kit.table('users as u').whereExists(withColumn(kit.table('orders as o').select(1), 'o.status', 'u.name')),
        kit.table('users').where('id', 1).select(oracle.raw('(select count(*) from orders) as n')),
        kit.table('users as u').where((group) => group.whereIn('name', kit.table('countries').select('name'))),
      ].map((query) => query.then(() => undefined, (error: unknown) => error)));
      expect(refusals.map((error) => (error as { construct?: string }).construct)).to.deep.equal(['exists subquery', 'subquery in raw SQL', 'in subquery']);
    });

    it('runs joins that are not on both shard keys as lookup joins, equal to one database', async () => {
      // orders.id is not the orders shard key: the users row with that id may live anywhere.
      await expectSame((table) => table('orders as o').join(table.tableName('users as u'), 'u.id', 'o.id').select('o.id', 'o.amount_cents', 'u.name').orderBy('u.name').orderBy('o.id').limit(30));
      await expectSame((table) =>
        table('orders as o').leftJoin(table.tableName('users as u'), 'u.id', 'o.id').where('o.status', 'paid').select('o.*', 'u.email').orderBy('o.id').offset(10).limit(40),
      );
      const textJoins: Build[] = [
        (table) => table('users as u').join('countries as c', 'c.name', 'u.name').select('u.id', 'c.code').orderBy('u.id'),
        (table) => table('countries as c').join(table.tableName('users as u'), 'u.name', 'c.name').where('u.id', '>', 50).select('c.code', 'u.id').orderBy('u.id'),
      ];
      for (const build of textJoins) {
        if (target.config.shards[0]!.primary.dialect !== 'mysql') await expectSame(build);
        else {
          // MariaDB's default collation compares text case-insensitively, which a merge cannot copy.
          const { actual } = await both(build);
          expect('error' in actual && (actual.error as { construct?: string }).construct).to.equal('join');
        }
      }
      const plan = kit.explain(kit.table('orders as o').join('users as u', 'u.id', 'o.id').select('o.id'));
      expect(plan.lookupJoin).to.include({ strategy: 'lookup', type: 'inner' });
      expect(plan.lookupJoin?.inner).to.deep.equal({ table: 'users', qualifier: 'u', column: 'id' });
    });

    it('passes through scalar functions it does not know, and refuses to sort by them or to merge unknown aggregates', async () => {
      await expectSame((table, raw) => table('users as u').select('id', raw('md5(name) as digest'), raw('upper(name) as shout')).orderBy('id').limit(20));
      const refusals = await Promise.all(
        [kit.table('users').orderByRaw('md5(name)'), kit.table('users').select(oracle.raw("string_agg(name, ',') as names"))].map((query) =>
          query.then(() => undefined, (error: unknown) => error),
        ),
      );
      expect(refusals.map((error) => (error as { construct?: string }).construct)).to.deep.equal(['md5', 'string_agg']);
    });

    it('answers or refuses what a review found wrong: column positions, OR in a correlated EXISTS, dates in HAVING, bound subqueries, DISTINCT ON, unknown aggregates, aliases as objects, unquoted names', async () => {
      await expectSame((table) => table('orders as o').select('status').max('created_at as latest').groupBy('status').havingRaw('max(created_at) > ?', ['2026-02-01T05:00:00Z']).orderBy('status'));
      await expectSame((table) => table('orders as o').select('status').min('created_at as first').groupBy('status').havingRaw('min(created_at) < ?', [new Date('2026-02-01T00:02:00Z')]).orderBy('status'));
      await expectSame((table) => table('orders as o').join(table.tableName('users as u'), 'u.id', 'o.id').select({ oid: 'o.id', who: 'u.name' }).orderBy('o.id').limit(5));
      await expectSame((table) => table('orders as o').select('status').sum('amount_cents as total').groupBy('status').havingRaw('SUM(AMOUNT_CENTS) > ?', [0]).orderBy('status'));
      const refusals = await Promise.all(
        [
          kit.table('orders').select('status', 'id').orderByRaw('2 desc').limit(3),
          kit.table('users as u').whereExists(withColumn(kit.table('orders as o').select(1), 'o.user_id', 'u.id').orWhere('o.status', 'void')),
          kit.table('users').where('id', 1).select('id', oracle.raw('(?) as total', [oracle('orders').count('*')])),
          kit.table('orders').distinctOn('status').select('status', 'id'),
          kit.table('orders').select(oracle.raw('my_own_agg(id) as x')),
        ].map((query) => query.then(() => undefined, (error: unknown) => error)),
      );
      expect(refusals.map((error) => (error as { construct?: string }).construct)).to.deep.equal(['orderBy', 'exists subquery', 'subquery in raw SQL', 'distinctOn', 'my_own_agg']);
    });
  });
}
