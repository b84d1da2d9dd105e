import { expect } from 'chai';
import {
  QueryFailedError,
  ScatterError,
  ShardKeyRequiredError,
  type ShardKit,
  UnknownTableError,
  UnsupportedQueryError,
} from '../../lib/index.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const user = (id: number) => ({ id, name: `user ${id}`, email: `u${id}@example.com` });

for (const target of TARGETS) {
  describe(`routing on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;

    /** Ids stored on each shard, read from the shard directly. */
    async function idsByShard(table: string, column = 'id'): Promise<Map<string, number[]>> {
      const entries = await Promise.all(
        kit.shardNames.map(async (shard) => {
          const ids = await kit.forShard(shard)(table).pluck(column);
          return [shard, ids.map(Number).sort((a, b) => a - b)] as const;
        }),
      );
      return new Map(entries);
    }

    /** A shard that does not own `key`. */
    const strangerTo = (key: number) => kit.shardNames.find((shard) => shard !== kit.shardFor(key))!;

    /** A row with a key planted on a shard that does not own it: only an unrouted query would see it. */
    async function plantDecoy(id: number): Promise<string> {
      const shard = strangerTo(id);
      await kit.forShard(shard)('users').insert({ ...user(id), name: 'decoy' });
      return shard;
    }

    before(async () => {
      kit = await openFreshKit(target);
    });

    after(async () => {
      await kit?.close();
    });

    beforeEach(async () => {
      await kit.allShards('orders').del();
      await kit.allShards('users').del();
    });

    it('splits a multi-row insert so that every row lands on its owner only', async () => {
      const ids = Array.from({ length: 120 }, (_, index) => index + 1);
      await kit.table('users').insert(ids.map(user));
      const stored = await idsByShard('users');
      for (const shard of kit.shardNames) {
        expect(stored.get(shard), shard).to.deep.equal(ids.filter((id) => kit.shardFor(id) === shard));
      }
      expect([...stored.values()].every((shardIds) => shardIds.length > 0), 'every shard got rows').to.equal(true);
    });

    it('reads, updates and deletes a pinned key on its owner only', async () => {
      await kit.table('users').insert([user(7), user(8)]);
      const decoyShard = await plantDecoy(7);

      const row = await kit.table('users').where('id', 7).first();
      expect(row.name).to.equal('user 7');

      expect(await kit.table('users').where('id', 7).update({ name: 'renamed' })).to.equal(1);
      expect(await kit.forShard(kit.shardFor(7))('users').where('id', 7).first()).to.include({ name: 'renamed' });
      expect(await kit.forShard(decoyShard)('users').where('id', 7).first()).to.include({ name: 'decoy' });

      expect(await kit.table('users').where('id', 7).del()).to.equal(1);
      expect(await kit.forShard(kit.shardFor(7))('users').where('id', 7)).to.have.length(0);
      expect(await kit.forShard(decoyShard)('users').where('id', 7)).to.have.length(1);
      expect(await kit.forShard(kit.shardFor(8))('users').where('id', 8)).to.have.length(1);
    });

    it('routes a builder each time it runs, and leaves it as the caller built it', async () => {
      await kit.table('users').insert([user(7), user(8)]);
      await plantDecoy(7);
      const query = kit.table('users').where('id', 7).first();
      const before = query.toSQL().sql;
      const routed: string[] = [];
      const listener = (event: { shard: string }) => routed.push(event.shard);
      kit.on('query', listener);
      try {
        const [first, second] = await Promise.all([query, query]);
        const third = await query;
        expect([first, second, third].map((row) => row.name)).to.deep.equal(['user 7', 'user 7', 'user 7']);
        expect(routed, 'each run went through the kit to the owner').to.deep.equal([kit.shardFor(7), kit.shardFor(7), kit.shardFor(7)]);
        expect(query.toSQL().sql).to.equal(before);
        // Clauses added after a run apply to the caller's builder alone, and route again.
        expect(await query.clone().where('name', 'nobody')).to.equal(undefined);
        expect((await query).name).to.equal('user 7');
      } finally {
        kit.off('query', listener);
      }
    });

    it('reads column info through the kit, compiled for the node that answers (MySQL names its database)', async () => {
      expect(Object.keys(await kit.table('users').columnInfo())).to.include.members(['id', 'name', 'email']);
    });

    it('fans whereIn out to exactly the owners, each asked only for its own keys', async () => {
      const ids = Array.from({ length: 30 }, (_, index) => 100 + index);
      await kit.table('users').insert(ids.map(user));
      const asked = [101, 105, 117, 128];
      const decoyShard = await plantDecoy(asked[0]!);

      const plan = kit.explain(kit.table('users').whereIn('id', asked));
      const owners = [...new Set(asked.map((id) => kit.shardFor(id)))];
      expect(plan.route.kind === 'one' ? [plan.route.shard] : plan.route.kind === 'some' ? plan.route.shards : []).to.have.members(owners);

      const rows = await kit.table('users').whereIn('id', asked).select('id', 'name');
      expect(rows.map((row: { id: unknown }) => Number(row.id)).sort()).to.deep.equal(asked);
      expect(rows.map((row: { name: string }) => row.name)).to.not.include('decoy');
      expect(await kit.forShard(decoyShard)('users').where('id', asked[0]!)).to.have.length(1);
    });

    it('concatenates an unpinned select over every shard, limit included', async () => {
      const ids = Array.from({ length: 40 }, (_, index) => 200 + index);
      await kit.table('users').insert(ids.map(user));
      const all = await kit.table('users').select('id');
      expect(all.map((row: { id: unknown }) => Number(row.id)).sort()).to.deep.equal(ids);
      expect(await kit.table('users').select('id').limit(15).offset(10)).to.have.length(15);
      expect(await kit.table('users').where('name', 'user 215').select('id')).to.have.length(1);
    });

    it('keeps a user and their orders on one shard, so a shard-local join sees them all', async () => {
      await kit.table('users').insert([user(1), user(2), user(3)]);
      const orders = [1, 2, 3].flatMap((userId) =>
        [1, 2].map((n) => ({ user_id: userId, id: userId * 10 + n, amount_cents: 100 * n })),
      );
      await kit.table('orders').insert(orders);
      const stored = await idsByShard('orders', 'user_id');
      for (const [shard, userIds] of stored) {
        for (const userId of userIds) expect(kit.shardFor(userId), `order of user ${userId} on ${shard}`).to.equal(shard);
      }
      const joined = await kit
        .table('orders')
        .join('users', 'users.id', 'orders.user_id')
        .where('orders.user_id', 2)
        .select('users.name', 'orders.amount_cents');
      expect(joined.map((row: { name: string }) => row.name)).to.deep.equal(['user 2', 'user 2']);
      const everywhere = await kit.table('orders').join('users', 'users.id', 'orders.user_id').select('orders.id');
      expect(everywhere).to.have.length(orders.length);
    });

    it('rolls back a single-shard transaction from forKey() and commits another', async () => {
      await kit
        .forKey(5)
        .transaction(async (trx) => {
          await trx('users').insert(user(5));
          await trx('orders').insert({ user_id: 5, id: 1, amount_cents: 1 });
          throw new Error('abort');
        })
        .catch((error: Error) => expect(error.message).to.equal('abort'));
      expect(await kit.table('users').where('id', 5)).to.have.length(0);
      expect(await kit.table('orders').where('user_id', 5)).to.have.length(0);

      await kit.forKey(5).transaction(async (trx) => {
        await trx('users').insert(user(5));
        await trx('orders').insert({ user_id: 5, id: 1, amount_cents: 1 });
      });
      expect(await kit.table('orders').where('user_id', 5)).to.have.length(1);
    });

    it('refuses update and delete without the shard key, and changes nothing', async () => {
      await kit.table('users').insert([user(1), user(2)]);
      for (const attempt of [
        () => kit.table('users').where('name', 'user 1').update({ name: 'x' }),
        () => kit.table('users').where('name', 'user 1').del(),
      ]) {
        const error = await attempt().then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).to.be.instanceOf(ShardKeyRequiredError);
      }
      expect(await kit.table('users').whereIn('id', [1, 2]).pluck('name')).to.have.members(['user 1', 'user 2']);
      expect(await kit.allShards('users').where('name', 'user 1').update({ name: 'x' })).to.equal(1);
    });

    it('refuses unknown tables and queries it cannot merge, with typed errors', async () => {
      expect(() => kit.table('no_such_table')).to.throw(UnknownTableError);
      const error = await kit
        .table('users')
        .orderByRaw('md5(name)')
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).to.be.instanceOf(UnsupportedQueryError);
      expect(error).to.have.property('construct', 'md5');
    });

    it('reports a driver error as QUERY_FAILED naming the shard, with the driver error as cause', async () => {
      await kit.table('users').insert(user(11));
      const error = await kit
        .table('users')
        .insert(user(11))
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).to.be.instanceOf(QueryFailedError);
      const failure = error as QueryFailedError;
      expect(failure).to.include({ code: 'QUERY_FAILED', shard: kit.shardFor(11), retryable: false });
      expect(failure.driverCode).to.be.oneOf(['23505', 'ER_DUP_ENTRY']);
      expect(failure.cause).to.be.instanceOf(Error);
    });

    it('says which shards committed when a multi-shard insert fails on some', async () => {
      const ids = Array.from({ length: 40 }, (_, index) => 300 + index);
      const clash = ids[0]!;
      await kit.table('users').insert(user(clash));
      const error = await kit
        .table('users')
        .insert(ids.map(user))
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).to.be.instanceOf(ScatterError);
      const scatter = error as ScatterError;
      expect(scatter.failures.map((failure) => failure.shard)).to.deep.equal([kit.shardFor(clash)]);
      const owners = new Set(ids.map((id) => kit.shardFor(id)));
      expect(scatter.succeeded).to.have.members([...owners].filter((shard) => shard !== kit.shardFor(clash)));
      const stored = await kit.table('users').whereIn('id', ids).pluck('id');
      const committed = ids.filter((id) => scatter.succeeded.includes(kit.shardFor(id)));
      expect(stored.map(Number).sort((a, b) => a - b)).to.deep.equal([clash, ...committed].sort((a, b) => a - b));
    });

    it('sends global tables to the global shard', async () => {
      await kit.table('countries').insert({ code: 'NZ', name: 'New Zealand' });
      const global = kit.config.globalShard;
      expect(await kit.forShard(global)('countries').pluck('code')).to.deep.equal(['NZ']);
      expect(await kit.table('countries').where('code', 'NZ').first()).to.include({ name: 'New Zealand' });
      await kit.table('countries').del();
    });
  });
}
