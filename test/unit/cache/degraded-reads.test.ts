import { expect } from 'chai';
import { type CachedRead, type CacheOutcome, ReadCache } from '../../../lib/cache/read-cache.js';

const policy = { ttlMs: 1000, jitter: 0, staleIfErrorMs: 0, staleWhileRevalidateMs: 0 };
const read = (extra: Partial<CachedRead> = {}): CachedRead => ({ key: 'users:1', dependency: { table: 'users', keys: ['1'] }, policy, ...extra });

describe('read cache under a degradation level (staleMs)', () => {
  let now = 0;
  beforeEach(() => {
    now = 10_000;
  });

  it('answers a degraded read from an expired entry within staleMs, without reading; others read', async () => {
    const cache = new ReadCache({ maxEntries: 10, maxBytes: 100_000, keepPastTtlMs: 60_000 }, () => true, () => now);
    let reads = 0;
    const fill = (value: string) => () => ({
      read: async () => {
        reads++;
        return value;
      },
      positions: new Map<string, string>(),
    });
    await cache.answer(read(), fill('old'));
    now += 5000;
    const outcomes: CacheOutcome[] = [];
    expect(await cache.answer(read({ staleMs: 60_000, maxAgeMs: 100 }), fill('new'), (what) => outcomes.push(what))).to.equal('old');
    expect(outcomes).to.deep.equal(['stale']);
    expect(reads).to.equal(1);
    expect(cache.stats.staleServed).to.equal(1);
    // Past the window, or a caller without staleMs (critical): read.
    now += 60_000;
    expect(await cache.answer(read({ staleMs: 60_000 }), fill('newer'))).to.equal('newer');
    now += 5000;
    expect(await cache.answer(read(), fill('newest'))).to.equal('newest');
    expect(reads).to.equal(3);
  });

  it('never answers with an entry a write through the kit ended', async () => {
    const cache = new ReadCache({ maxEntries: 10, maxBytes: 100_000, keepPastTtlMs: 60_000 }, () => true, () => now);
    await cache.answer(read(), () => ({ read: async () => 'old', positions: new Map() }));
    now += 2000;
    cache.versions.wroteKeys('users', ['1']);
    expect(await cache.answer(read({ staleMs: 60_000 }), () => ({ read: async () => 'written', positions: new Map() }))).to.equal('written');
  });
});
