import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { createShardKit, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { REDIS_URL, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Routed reads of `table` that reached a database, counted from a kit's query events. */
function countQueries(kit: ShardKit, table: string): () => number {
  let count = 0;
  kit.on('query', (event) => {
    if (event.table === table && event.method !== 'update' && event.method !== 'insert') count++;
  });
  return () => count;
}

/**
 * The read cache's shared level (Redis, started by scripts/cluster.sh) between two kit instances
 * of one cluster, as two processes of an application would run.
 */
for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`shared read cache (Redis) on ${target.name}`, function () {
    this.timeout(120_000);
    let kits: ShardKit[] = [];
    const redis = ServerControl.redis();
    type Options = { local?: boolean; ttlMs?: number; staleWhileRevalidateMs?: number };
    const config = (options: Options = {}): ShardKitConfig => ({
      ...target.config,
      tables: {
        ...target.config.tables,
        users: { ...target.config.tables.users!, cache: { ttlMs: options.ttlMs ?? 60_000, jitter: 0, staleWhileRevalidateMs: options.staleWhileRevalidateMs ?? 0 } },
      },
      cache: { redis: { url: REDIS_URL, keyPrefix: `test:${Date.now()}:${Math.random()}:` }, local: options.local ?? true },
    });
    const open = async (count: number, options: Options = {}) => {
      const shared = config(options);
      const first = await openFreshKit({ ...target, config: shared });
      kits = [first, ...(await Promise.all(Array.from({ length: count - 1 }, () => createShardKit(shared))))];
      await first.table('users').insert(Array.from({ length: 50 }, (_, index) => ({ id: index + 1, name: 'v0', email: `u${index + 1}@example.com` })));
      return kits;
    };

    afterEach(async () => {
      await redis.start();
      await Promise.all(kits.map((kit) => kit.close()));
      kits = [];
    });

    it("answers one instance's miss from another's entry, and a write on either ends it for both", async () => {
      const [a, b] = (await open(2)) as [ShardKit, ShardKit];
      const onB = countQueries(b, 'users');
      expect(await a.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'v0' });
      expect(await b.table('users').where('id', 3).first('name')).to.deep.equal({ name: 'v0' });
      expect(onB(), 'b read nothing from the database').to.equal(0);
      expect(b.cacheStats.sharedHits).to.equal(1);
      await b.table('users').where('id', 3).update({ name: 'v1' });
      // a's own entry (L1) ends when b's message arrives; its next miss finds no shared entry older than the write.
      const seenAfter = performance.now();
      while ((await a.table('users').where('id', 3).first('name')).name !== 'v1') await sleep(1);
      console.log(`      a saw b's write after ${(performance.now() - seenAfter).toFixed(1)} ms`);
      expect(performance.now() - seenAfter).to.be.below(500);
    });

    it('never serves a value older than the last write committed before the read began (writers and cached readers on two instances)', async () => {
      const [a, b] = (await open(2, { local: false })) as [ShardKit, ShardKit];
      const ids = [1, 2, 3, 4, 5];
      /** Per key, the commit times (performance.now(), one clock: one process) of each version written. */
      const committed = new Map<number, { version: number; at: number }[]>(ids.map((id) => [id, [{ version: 0, at: 0 }]]));
      /** What each read saw, and the newest version committed before it began: judged once every write is recorded. */
      const seenByReads: { key: number; seen: number; floor: number }[] = [];
      let running = true;
      let reads = 0;
      // Each key has one writer, whose writes commit in the order they are recorded.
      const writer = async (kit: ShardKit, offset: number) => {
        const mine = ids.filter((id) => id % 2 === offset);
        for (let version = 1; running; version++) {
          const id = mine[version % mine.length]!;
          const value = version * 2 + offset;
          await kit.table('users').where('id', id).update({ name: `v${value}` });
          committed.get(id)!.push({ version: value, at: performance.now() });
          await sleep(3);
        }
      };
      let listReads = 0;
      const reader = async (kit: ShardKit) => {
        while (running) {
          const turn = reads++;
          const id = ids[turn % ids.length]!;
          const began = performance.now();
          // Every other read asks for two keys at once: answered key by key from the cache.
          const pair = [id, ids[(turn + 1) % ids.length]!];
          const list = turn % 2 === 1;
          const rows = list ? await kit.table('users').whereIn('id', pair).select('id', 'name') : [{ id, ...(await kit.table('users').where('id', id).first('name')) }];
          if (list) listReads++;
          expect(rows.length).to.equal(list ? 2 : 1);
          for (const row of rows) {
            const key = Number(row.id);
            const floor = committed.get(key)!.filter((entry) => entry.at < began).at(-1)!.version;
            seenByReads.push({ key, seen: Number(String(row.name).slice(1)), floor });
          }
        }
      };
      const work = [writer(a, 0), writer(b, 1), reader(a), reader(b), reader(a), reader(b)];
      await sleep(3000);
      running = false;
      await Promise.all(work);
      // A read may see a write that committed before its writer recorded it: only the whole history judges it.
      let stale = 0;
      let neverWritten = 0;
      for (const { key, seen, floor } of seenByReads) {
        const history = committed.get(key)!.map((entry) => entry.version);
        if (!history.includes(seen)) neverWritten++;
        else if (history.indexOf(seen) < history.indexOf(floor)) stale++;
      }
      const stats = [a.cacheStats, b.cacheStats];
      console.log(`      ${reads} cached reads (${listReads} of two keys), ${stale} stale; shared hits ${stats[0]!.sharedHits + stats[1]!.sharedHits}, misses ${stats[0]!.misses + stats[1]!.misses}`);
      expect(reads).to.be.greaterThan(100);
      expect(stale).to.equal(0);
      expect(neverWritten).to.equal(0);
      expect(stats[0]!.sharedHits + stats[1]!.sharedHits, 'the shared level answered reads').to.be.greaterThan(0);
    });

    it("with staleWhileRevalidateMs serves the previous value at once while another instance's refresh holds the lock (its primary stopped)", async () => {
      const [a, b] = (await open(2, { local: false, ttlMs: 300, staleWhileRevalidateMs: 60_000 })) as [ShardKit, ShardKit];
      expect(await a.table('users').where('id', 13).first('name')).to.deep.equal({ name: 'v0' });
      // b has run (and learned the key's column type) before the primary stops.
      expect(await b.table('users').where('id', 13).first('name')).to.deep.equal({ name: 'v0' });
      await sleep(350);
      const owner = new ServerControl(a.topology.shard(a.shardFor(13)).primary);
      await owner.pause();
      try {
        // a takes the entry's lock and its refresh waits on the stopped primary (time enough to take it on a slow machine).
        const refreshing = a.table('users', { timeoutMs: 2000 }).where('id', 13).first('name').catch((error: unknown) => error);
        await sleep(400);
        const started = performance.now();
        expect(await b.table('users', { timeoutMs: 2000 }).where('id', 13).first('name')).to.deep.equal({ name: 'v0' });
        const servedInMs = performance.now() - started;
        console.log(`      the waiting instance was answered in ${servedInMs.toFixed(1)} ms while the lock holder's read waited`);
        expect(servedInMs).to.be.below(500);
        expect(b.cacheStats).to.include({ staleServed: 1, sharedHits: 1 });
        expect(await refreshing).to.be.instanceOf(Error);
      } finally {
        await owner.resume();
      }
    });

    it('lets one instance fill a hot key while the other waits for its entry', async () => {
      const [a, b] = (await open(2)) as [ShardKit, ShardKit];
      const counts = [countQueries(a, 'users'), countQueries(b, 'users')];
      const rows = await Promise.all([a, b].flatMap((kit) => Array.from({ length: 500 }, () => kit.table('users').where('id', 8).first('name'))));
      const queries = counts.map((count) => count());
      console.log(`      1,000 concurrent reads of one key on two instances: ${queries[0]! + queries[1]!} database reads (${queries.join(' + ')}), lock waits ${a.cacheStats.lockWaits + b.cacheStats.lockWaits}`);
      expect(new Set(rows.map((row) => row.name))).to.deep.equal(new Set(['v0']));
      expect(queries[0]! + queries[1]!).to.be.at.most(2);
    });

    it('keeps answering while Redis is killed, stopped and restarted, then uses it again', async () => {
      const [a, b] = (await open(2)) as [ShardKit, ShardKit];
      let failures = 0;
      let reads = 0;
      const slowest = { ms: 0 };
      const readLoop = async (kit: ShardKit, until: () => boolean) => {
        for (let index = 0; !until(); index++) {
          const started = performance.now();
          try {
            await kit.table('users').where('id', (index % 20) + 1).first('name');
            reads++;
          } catch {
            failures++;
          }
          slowest.ms = Math.max(slowest.ms, performance.now() - started);
          if (index % 7 === 0) await kit.table('users').where('id', (index % 20) + 1).update({ name: `w${index}` }).catch(() => failures++);
        }
      };
      let done = false;
      const loops = [readLoop(a, () => done), readLoop(b, () => done)];
      await sleep(300);
      await redis.kill();
      await sleep(700);
      await redis.start();
      await sleep(700);
      await redis.pause();
      await sleep(700);
      await redis.resume();
      await sleep(700);
      done = true;
      await Promise.all(loops);
      console.log(`      ${reads} reads, ${failures} failed, slowest ${slowest.ms.toFixed(0)} ms while Redis was killed, restarted, stopped and resumed`);
      expect(failures).to.equal(0);
      // Back in use: a fresh key read on a is answered to b by Redis (once the ends of writes it missed are told).
      let back = false;
      for (let id = 30; id < 50 && !back; id++) {
        await sleep(250);
        await a.table('users').where('id', id).first('name');
        const before = b.cacheStats.sharedHits;
        await b.table('users').where('id', id).first('name');
        back = b.cacheStats.sharedHits === before + 1;
      }
      expect(back, 'the shared level answers again').to.equal(true);
    });
  });
}

describe('shardkit cache flush and status with the shared read cache', function () {
  this.timeout(120_000);
  const shardkit = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['bin/shardkit.js', '--config', 'shards.cluster.config.ts#cached', ...args], (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  it("flushes every instance's entries, and status shows each instance's hit ratio", async () => {
    const { cached } = await import('../../shards.cluster.config.js');
    const kit = await createShardKit(cached);
    try {
      await kit.table('users').where('id', 1).delete();
      await kit.table('users').insert({ id: 1, name: 'Cached', email: 'c@example.com' });
      await kit.table('users').where('id', 1).first();
      await kit.table('users').where('id', 1).first();
      expect(kit.cacheStats.hits).to.equal(1);
      await sleep(2500);
      const status = await shardkit('status', '--json');
      const reported = JSON.parse(status.stdout).cache.instances as { stats: { hits: number } }[];
      expect(reported.some((instance) => instance.stats.hits === 1), status.stdout.slice(-400)).to.equal(true);
      expect((await shardkit('status')).stdout).to.match(/hit ratio/);

      const flushed = await shardkit('cache', 'flush', '--table', 'users');
      expect(flushed.code, flushed.stderr).to.equal(0);
      const queries = countQueries(kit, 'users');
      // The flush reached this process by message: its next read goes to the database.
      for (let tries = 0; tries < 100 && queries() === 0; tries++) {
        await kit.table('users').where('id', 1).first();
        if (queries() === 0) await sleep(20);
      }
      expect(queries()).to.equal(1);
      expect((await shardkit('cache', 'flush', '--table', 'nope')).code).to.equal(2);
    } finally {
      await kit.close();
    }
  });
});

