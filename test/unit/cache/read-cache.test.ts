import { expect } from 'chai';
import { ReadCache, type CachedRead, type CacheOutcome } from '../../../lib/cache/read-cache.js';
import { ShardUnavailableError, UnsupportedQueryError } from '../../../lib/errors.js';

/** A read whose answer the test hands over when it chooses: the interleavings are forced. */
function controlledFill(positions: ReadonlyMap<string, string> = new Map()) {
  let resolve!: (value: unknown) => void;
  let reject!: (error: unknown) => void;
  let reads = 0;
  const answer = new Promise<unknown>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return {
    fill: () => ({
      read: () => {
        reads++;
        return answer;
      },
      positions,
    }),
    resolve,
    reject,
    reads: () => reads,
  };
}

const ANSWER = (value: unknown) => () => ({ read: async () => value, positions: new Map<string, string>() });
const policy = { ttlMs: 1000, jitter: 0, staleIfErrorMs: 0, staleWhileRevalidateMs: 0 };
const byKey = (key: string): CachedRead => ({ key: `users:${key}`, dependency: { table: 'users', keys: [key] }, policy });
const lsnOrder = (_shard: string, position: string, target: string) => Number(position) >= Number(target);

describe('read cache (L1)', () => {
  let now = 0;
  const cache = () => new ReadCache({ maxEntries: 100, maxBytes: 1_000_000 }, lsnOrder, () => now);
  beforeEach(() => {
    now = 1_000;
  });

  it('answers a second read from the entry, a copy each time', async () => {
    const reads = cache();
    const outcomes: CacheOutcome[] = [];
    const first = (await reads.answer(byKey('1'), ANSWER([{ id: 1, at: new Date(5) }]), (what) => outcomes.push(what))) as { at: Date }[];
    first[0]!.at.setTime(0);
    const second = await reads.answer(byKey('1'), ANSWER('never read'), (what) => outcomes.push(what));
    expect(second).to.deep.equal([{ id: 1, at: new Date(5) }]);
    expect(outcomes).to.deep.equal(['miss', 'hit']);
    expect(reads.stats).to.include({ hits: 1, misses: 1 });
  });

  it("never stores a fill that began before a write committed (the seed's race), nor serves it", async () => {
    const reads = cache();
    const slow = controlledFill();
    // 1. a miss reads the old row; 2. a write commits and invalidates; 3. the miss finishes.
    const pending = reads.answer(byKey('1'), slow.fill);
    reads.versions.wroteKeys('users', ['1']);
    slow.resolve({ id: 1, name: 'old' });
    expect(await pending).to.deep.equal({ id: 1, name: 'old' });
    expect(reads.stats.refusedFills).to.equal(1);
    expect(await reads.answer(byKey('1'), ANSWER({ id: 1, name: 'new' }))).to.deep.equal({ id: 1, name: 'new' });
  });

  it('does not serve an entry once a write to its key, or a write of the whole table, committed', async () => {
    const reads = cache();
    await reads.answer(byKey('1'), ANSWER('v1'));
    await reads.answer(byKey('2'), ANSWER('w1'));
    const everyRow: CachedRead = { key: 'users:all', dependency: { table: 'users' }, policy };
    await reads.answer(everyRow, ANSWER('all v1'));
    reads.versions.wroteKeys('users', ['1']);
    expect(await reads.answer(byKey('1'), ANSWER('v2'))).to.equal('v2');
    expect(await reads.answer(byKey('2'), ANSWER('never read')), 'another key stays').to.equal('w1');
    expect(await reads.answer(everyRow, ANSWER('all v2')), 'a table-wide entry follows every write').to.equal('all v2');
    reads.versions.wroteTable('users');
    expect(await reads.answer(byKey('2'), ANSWER('w2'))).to.equal('w2');
    reads.versions.wroteKeys('orders', ['1']);
    expect(await reads.answer(byKey('2'), ANSWER('never read')), 'other tables do not count').to.equal('w2');
  });

  it('makes one read for concurrent misses, unless a write moved while it ran', async () => {
    const reads = cache();
    const slow = controlledFill();
    const waiting = Array.from({ length: 1000 }, () => reads.answer(byKey('1'), slow.fill));
    slow.resolve('v1');
    expect(new Set(await Promise.all(waiting))).to.deep.equal(new Set(['v1']));
    expect(slow.reads()).to.equal(1);
    expect(reads.stats.coalesced).to.equal(999);

    const racing = controlledFill();
    const first = reads.answer({ ...byKey('2') }, racing.fill);
    const late = reads.answer({ ...byKey('2') }, ANSWER('read after the write'));
    reads.versions.wroteKeys('users', ['2']);
    racing.resolve('read before the write');
    expect(await first).to.equal('read before the write');
    expect(await late, 'a waiter whose key was written reads again').to.equal('read after the write');
  });

  it('expires entries after their TTL, less a random share with jitter', async () => {
    const reads = cache();
    await reads.answer(byKey('1'), ANSWER('v1'));
    now += 999;
    expect(await reads.answer(byKey('1'), ANSWER('v2'))).to.equal('v1');
    now += 2;
    expect(await reads.answer(byKey('1'), ANSWER('v2'))).to.equal('v2');
    const lives: number[] = [];
    for (let index = 0; index < 50; index++) {
      const jittered = cache();
      const read = { ...byKey('1'), policy: { ...policy, jitter: 0.5 } };
      now = 1_000;
      await jittered.answer(read, ANSWER('v'));
      let life = 0;
      while ((await jittered.answer(read, ANSWER('new'))) === 'v') {
        life += 50;
        now += 50;
      }
      lives.push(life);
    }
    expect(Math.min(...lives)).to.be.at.least(500);
    expect(Math.max(...lives)).to.be.at.most(1000);
    expect(new Set(lives).size, 'lives differ').to.be.greaterThan(3);
  });

  it('serves an entry to a read that must see a position only if the entry reached it', async () => {
    const reads = cache();
    await reads.answer(byKey('1'), () => ({ read: async () => 'at 10', positions: new Map([['a', '10']]) }));
    expect(await reads.answer({ ...byKey('1'), required: new Map([['a', '9']]) }, ANSWER('never read'))).to.equal('at 10');
    expect(await reads.answer({ ...byKey('1'), required: new Map([['a', '11']]) }, () => ({ read: async () => 'at 12', positions: new Map([['a', '12']]) }))).to.equal('at 12');
    expect(await reads.answer({ ...byKey('1'), required: new Map([['b', '1']]) }, ANSWER('unknown position'))).to.equal('unknown position');
    now += 600;
    expect(await reads.answer({ ...byKey('1'), maxAgeMs: 500 }, ANSWER('younger'))).to.equal('younger');
  });

  it('serves an expired entry only to a read failing with a retryable error, within staleIfErrorMs, never an invalidated one', async () => {
    const reads = cache();
    const lenient = { ...byKey('1'), policy: { ...policy, staleIfErrorMs: 5000 } };
    await reads.answer(lenient, ANSWER('v1'));
    now += 2000;
    const down = () => ({ read: async () => Promise.reject(new ShardUnavailableError('a', 'a-primary', 1000)), positions: new Map() });
    const outcomes: CacheOutcome[] = [];
    expect(await reads.answer(lenient, down, (what) => outcomes.push(what))).to.equal('v1');
    expect(outcomes).to.deep.equal(['miss', 'stale']);
    const refused = () => ({ read: async () => Promise.reject(new UnsupportedQueryError('x', 'not retryable')), positions: new Map() });
    expect(await reads.answer(lenient, refused).catch((error: unknown) => error)).to.be.instanceOf(UnsupportedQueryError);
    expect(await reads.answer(byKey('1'), down).catch((error: unknown) => error), 'not opted in').to.be.instanceOf(ShardUnavailableError);
    now += 4500;
    expect(await reads.answer(lenient, down).catch((error: unknown) => error), 'past the window').to.be.instanceOf(ShardUnavailableError);
    now -= 4500;
    reads.versions.wroteKeys('users', ['1']);
    expect(await reads.answer(lenient, down).catch((error: unknown) => error), 'invalidated').to.be.instanceOf(ShardUnavailableError);
  });

  it('with staleWhileRevalidateMs answers an expired entry at once while one read refreshes it; never one a write ended', async () => {
    const reads = cache();
    const revalidating = { ...byKey('1'), policy: { ...policy, staleWhileRevalidateMs: 5000 } };
    await reads.answer(revalidating, ANSWER('v1'));
    now += 1500;
    const refresh = controlledFill();
    const outcomes: CacheOutcome[] = [];
    const answers = await Promise.all(Array.from({ length: 3 }, () => reads.answer(revalidating, refresh.fill, (what) => outcomes.push(what))));
    expect(answers).to.deep.equal(['v1', 'v1', 'v1']);
    expect(refresh.reads(), 'one refresh for the three').to.equal(1);
    refresh.resolve('v2');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await reads.answer(revalidating, ANSWER('never read'))).to.equal('v2');
    expect(outcomes).to.deep.equal(['stale', 'stale', 'stale']);
    // A refresh that fails leaves the entry as it was, within the window.
    now += 1500;
    const failing = () => ({ read: async () => Promise.reject(new ShardUnavailableError('a', 'a-primary', 1000)), positions: new Map() });
    expect(await reads.answer(revalidating, failing)).to.equal('v2');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await reads.answer(revalidating, failing)).to.equal('v2');
    await new Promise((resolve) => setImmediate(resolve));
    // A refresh the database refuses (not retryable) ends the entry: the next read meets the error.
    const refusedRefresh = () => ({ read: async () => Promise.reject(new UnsupportedQueryError('x', 'refused')), positions: new Map() });
    expect(await reads.answer(revalidating, refusedRefresh)).to.equal('v2');
    await new Promise((resolve) => setImmediate(resolve));
    expect(await reads.answer(revalidating, refusedRefresh).catch((error: unknown) => error)).to.be.instanceOf(UnsupportedQueryError);
    expect(await reads.answer(revalidating, ANSWER('v2 again'))).to.equal('v2 again');
    // Past the window, or after a write, it is read again first.
    now += 6000;
    expect(await reads.answer(revalidating, ANSWER('v3'))).to.equal('v3');
    now += 1500;
    reads.versions.wroteKeys('users', ['1']);
    expect(await reads.answer(revalidating, ANSWER('v4')), 'ended by a write').to.equal('v4');
    expect(await reads.answer(byKey('1'), ANSWER('not opted in'))).to.equal('v4');
  });

  it('stays within its entry and byte bounds, and flushes a table or everything', async () => {
    const reads = new ReadCache({ maxEntries: 10, maxBytes: 1_000_000 }, lsnOrder, () => now);
    for (let index = 0; index < 50; index++) await reads.answer(byKey(String(index)), ANSWER({ index }));
    expect(reads.stats.entries).to.equal(10);
    const small = new ReadCache({ maxEntries: 1000, maxBytes: 10_000 }, lsnOrder, () => now);
    for (let index = 0; index < 50; index++) await small.answer(byKey(String(index)), ANSWER('x'.repeat(1000)));
    expect(small.stats.bytes).to.be.at.most(10_000);
    await reads.answer({ key: 'orders:1', dependency: { table: 'orders', keys: ['1'] }, policy }, ANSWER('order'));
    reads.flush('users');
    expect(reads.stats.entries).to.equal(1);
    reads.flush();
    expect(reads.stats.entries).to.equal(0);
  });
});
