import { expect } from 'chai';
import { createShardKit, QueryTimeoutError, type ShardKit, type ShardKitConfig, ShardUnavailableError } from '../../lib/index.js';
import { ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The routed statements a kit sends to `table`, counted from its query events. */
function countQueries(kit: ShardKit, table: string): () => number {
  let count = 0;
  kit.on('query', (event) => {
    if (event.table === table) count++;
  });
  return () => count;
}

for (const target of TARGETS) {
  describe(`read cache on ${target.name}`, function () {
    this.timeout(60_000);
    const cached = (ttlMs: number, extra: object = {}): ShardKitConfig => ({
      ...target.config,
      tables: { ...target.config.tables, users: { ...target.config.tables.users!, cache: { ttlMs, ...extra } } },
    });
    let kits: ShardKit[] = [];
    const open = async (config: ShardKitConfig) => {
      const kit = kits.length === 0 ? await openFreshKit({ ...target, config }) : await createShardKit(config);
      kits.push(kit);
      return kit;
    };

    afterEach(async () => {
      await Promise.all(kits.map((kit) => kit.close()));
      kits = [];
    });

    const seed = async (kit: ShardKit) => {
      await kit.table('users').insert(Array.from({ length: 20 }, (_, index) => ({ id: index + 1, name: `User ${index + 1}`, email: `u${index + 1}@example.com` })));
    };

    it('answers a repeated read from the cache, and a write through the kit ends its entry at once', async () => {
      const kit = await open(cached(60_000));
      await seed(kit);
      const queries = countQueries(kit, 'users');
      expect(await kit.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'User 3' });
      expect(await kit.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'User 3' });
      expect(queries(), 'the second read is a hit').to.equal(1);
      expect(kit.cacheStats).to.include({ hits: 1, misses: 1 });

      await kit.table('users').where('id', 3).update({ name: 'Renamed' });
      expect(await kit.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'Renamed' });
      await kit.transaction(3, async (trx) => {
        await trx.table('users').where('id', 3).update({ name: 'In a transaction' });
        // Inside the transaction reads see its own writes: never the cache.
        expect(await trx.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'In a transaction' });
      });
      expect(await kit.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'In a transaction' });
      // A key nobody wrote stays cached; an insert of a key ends the entries that pin it.
      await kit.table('users').where('id', 4).first();
      await kit.table('users').whereIn('id', [30, 4]).select('id').orderBy('id');
      const before = queries();
      await kit.table('users').where('id', 4).first();
      await kit.table('users').insert({ id: 30, name: 'New', email: 'n@example.com' });
      const both = await kit.table('users').whereIn('id', [30, 4]).select('id').orderBy('id');
      expect(both.map((row: { id: unknown }) => Number(row.id))).to.deep.equal([4, 30]);
      expect(queries() - before, 'the insert and the whereIn read again').to.be.at.least(2);

      // An update that moves a row to another key of its shard ends the new key's entries too.
      const from = 6;
      const to = Array.from({ length: 200 }, (_, index) => index + 100).find((id) => kit.shardFor(id) === kit.shardFor(from))!;
      expect(await kit.table('users').where('id', to).first('name')).to.equal(undefined);
      await kit.table('users').where('id', from).update({ id: to });
      expect(await kit.table('users').where('id', to).first('name')).to.deep.equal({ name: `User ${from}` });
    });

    it('answers whereIn(keys) key by key: a key read before is not read again, a write of one key reads only that key', async () => {
      const kit = await open(cached(60_000));
      await seed(kit);
      const queries = countQueries(kit, 'users');
      const ids = (rows: { id: unknown }[]) => rows.map((row) => Number(row.id)).sort((a, b) => a - b);
      const uncached = async (keys: unknown[]) => ids(await kit.table('users', { cache: false }).whereIn('id', keys as number[]).where('name', 'like', 'User%'));
      const list = (keys: unknown[]) => kit.table('users').whereIn('id', keys as number[]).where('name', 'like', 'User%');

      expect(ids(await list([1, 2, 3]))).to.deep.equal([1, 2, 3]);
      expect(kit.cacheStats).to.include({ misses: 3, hits: 0 });
      // A key another list read is a hit; the misses are read together, in one statement per shard.
      const before = queries();
      expect(ids(await list([2, 3, 4, 999]))).to.deep.equal([2, 3, 4]);
      expect(kit.cacheStats, JSON.stringify(kit.cacheStats)).to.include({ misses: 5, hits: 2 });
      expect(queries() - before).to.equal(new Set([kit.shardFor(4), kit.shardFor(999)]).size);

      await kit.table('users').where('id', 3).update({ name: 'Not a user any more' });
      await kit.table('users').insert({ id: 999, name: 'User 999', email: 'u999@example.com' });
      const afterWrites = queries();
      const answered = await list([1, '2', 2, 3, 999]);
      // Only the written keys went to the database.
      expect(queries() - afterWrites).to.equal(new Set([kit.shardFor(3), kit.shardFor(999)]).size);
      expect(ids(answered)).to.deep.equal(await uncached([1, '2', 2, 3, 999]));
      expect(ids(answered)).to.deep.equal([1, 2, 999]);
      expect(kit.cacheStats.hits).to.equal(4);
    });

    it('a read that pins no key follows every write to the table; a join and cache: false read past the cache', async () => {
      const kit = await open(cached(60_000));
      await seed(kit);
      const named = () => kit.table('users').where('name', 'like', 'Twin%').select('id').orderBy('id');
      expect(await named()).to.deep.equal([]);
      await kit.table('users').insert({ id: 41, name: 'Twin A', email: 'a@example.com' });
      expect((await named()).map((row: { id: unknown }) => Number(row.id))).to.deep.equal([41]);
      await kit.table('users').where('id', 41).delete();
      expect(await named()).to.deep.equal([]);

      const queries = countQueries(kit, 'users');
      await kit.table('users', { cache: false }).where('id', 5).first();
      await kit.table('users', { cache: false }).where('id', 5).first();
      const joined = () => kit.table('users').join('orders', 'orders.user_id', 'users.id').where('users.id', 5).select('orders.id');
      await joined();
      await joined();
      expect(queries()).to.equal(4);
    });

    it('makes one database read for 1,000 concurrent misses of one key', async () => {
      const kit = await open(cached(60_000));
      await seed(kit);
      const queries = countQueries(kit, 'users');
      const rows = await Promise.all(Array.from({ length: 1000 }, () => kit.table('users').where('id', 7).first('name')));
      console.log(`      1,000 concurrent reads of one key: ${queries()} database read(s), ${kit.cacheStats.coalesced} coalesced`);
      expect(new Set(rows.map((row) => row.name))).to.deep.equal(new Set(['User 7']));
      expect(queries()).to.equal(1);
    });

    // PGlite lives in one process: two kits cannot share its database.
    if (target.name !== 'pglite') {
    it("serves another instance's older value only within the TTL, and never to a read carrying that instance's write", async () => {
      const [reader, writer] = [await open(cached(60_000)), await open(cached(60_000))];
      await seed(reader);
      expect(await reader.table('users').where('id', 9).first('name')).to.deep.equal({ name: 'User 9' });
      const session = writer.session();
      await session.run(() => writer.table('users').where('id', 9).update({ name: 'Written elsewhere' }));
      // Another process's write is not seen by this one's cache until the entry's TTL.
      expect(await reader.table('users').where('id', 9).first('name')).to.deep.equal({ name: 'User 9' });
      // With the writer's token the read needs a position the entry does not have: read from the database.
      expect(await reader.table('users', { after: session.token() }).where('id', 9).first('name')).to.deep.equal({ name: 'Written elsewhere' });
      await reader.session(session.token()).run(async () => {
        expect(await reader.table('users').where('id', 9).first('name')).to.deep.equal({ name: 'Written elsewhere' });
      });
    });

    it('refreshes a stale entry with the read as it was asked, whatever the caller then does to its builder', async () => {
      const kit = await open(cached(400, { jitter: 0, staleWhileRevalidateMs: 30_000 }));
      await seed(kit);
      const ask = () => kit.table('users').where('id', 12).first('name');
      expect(await ask()).to.deep.equal({ name: 'User 12' });
      await sleep(450);
      const stale = ask();
      expect(await stale).to.deep.equal({ name: 'User 12' });
      // The caller reuses its builder at once, while the refresh of the entry is still under way.
      (stale as unknown as { clearSelect(): { select(column: string): unknown } }).clearSelect().select('email');
      await sleep(100);
      expect(await ask(), 'the refreshed entry holds what was asked').to.deep.equal({ name: 'User 12' });
      expect(kit.cacheStats.staleServed).to.equal(1);
    });

    it('ends an entry at its TTL', async () => {
      const [reader, writer] = [await open(cached(300, { jitter: 0 })), await open(cached(300))];
      await seed(reader);
      await reader.table('users').where('id', 11).first();
      await writer.table('users').where('id', 11).update({ name: 'Later' });
      await sleep(350);
      expect(await reader.table('users').where('id', 11).first('name')).to.deep.equal({ name: 'Later' });
    });
    }

    if (target.name === 'postgres cluster') {
      it('answers from an expired entry while the primary does not answer, only with staleIfErrorMs, and says so', async () => {
        const kit = await open({ ...cached(200, { jitter: 0, staleIfErrorMs: 30_000 }), timeouts: { queryMs: 1000 } });
        await seed(kit);
        const stale: string[] = [];
        kit.on('cache', (event) => {
          if (event.outcome === 'stale') stale.push(event.table);
        });
        await kit.table('users').where('id', 12).first('name');
        const owner = new ServerControl(kit.topology.shard(kit.shardFor(12)).primary);
        await owner.pause();
        try {
          await sleep(250);
          const started = performance.now();
          expect(await kit.table('users').where('id', 12).first('name')).to.deep.equal({ name: 'User 12' });
          expect(performance.now() - started).to.be.below(1000 + 400);
          expect(stale).to.deep.equal(['users']);
          const refused = await kit.table('users', { cache: { ttlMs: 200 } }).where('id', 12).first().catch((error: unknown) => error);
          expect(refused).to.satisfy((error: unknown) => error instanceof QueryTimeoutError || error instanceof ShardUnavailableError);
        } finally {
          await owner.resume();
        }
        expect(kit.cacheStats.staleServed).to.equal(1);
      });
    }
  });
}
