/**
 * The read cache on the local PostgreSQL cluster, against uncached routed reads of the same keys
 * in the same run (interleaved rounds):
 *
 *   l1         kit.table('users').where('id', k).first() answered from this process's cache
 *   l2         the same with `cache.local: false`: every read asks Redis
 *   uncached   the same read with `cache: false`, from the primary
 *   hits/s     L1 hits in one process, one after another, for 3 s; and, as the floor under any
 *              hit, the same builder built and awaited once without running it
 *   zipf       reads of 10,000 keys drawn Zipf (s = 1.1) with 1% writes, TTL 30 s: hit ratio and
 *              database reads saved
 *
 * Last line: {"bench":"cache","l1HitP50Ratio":..,"l2HitP50Ratio":..,"l1HitsPerSec":..,"zipfHitRatio":..}
 */
import { renderTable } from '../../lib/cli/render-table.js';
import { createShardKit, SchemaMigrator, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { REDIS_URL, withLocalCluster } from '../local-cluster.js';
import { percentile, sampleInterleaved } from './latency.js';

const ROWS = 10_000;
const ROUNDS = 2000;
const ZIPF_READS = 20_000;

function cachedConfig(local: boolean): ShardKitConfig {
  return {
    ...clusterConfig,
    tables: { ...clusterConfig.tables, users: { shardKey: 'id', cache: { ttlMs: 30_000 } } },
    cache: { local, redis: { url: REDIS_URL, keyPrefix: `bench:${Date.now()}:` } },
  };
}

/** Keys 1..n drawn with probability proportional to 1 / rank^s. */
function zipf(n: number, s: number): () => number {
  const weights = Array.from({ length: n }, (_, rank) => 1 / (rank + 1) ** s);
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const cumulative: number[] = [];
  let running = 0;
  for (const weight of weights) {
    running += weight / total;
    cumulative.push(running);
  }
  return () => {
    const target = Math.random();
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low + 1;
  };
}

export const cacheBenchmark: Benchmark = {
  name: 'cache',
  description: `read cache: L1 and L2 (Redis) hits vs uncached routed point reads, ${ROUNDS} interleaved rounds; L1 hits/s; a Zipf workload's hit ratio`,
  run: () =>
    withLocalCluster(async () => {
      const kits: ShardKit[] = [];
      try {
        const l1 = await createShardKit(cachedConfig(true));
        kits.push(l1);
        await new SchemaMigrator(l1).latest();
        await l1.allShards('orders').del();
        await l1.allShards('users').del();
        for (let start = 1; start <= ROWS; start += 1000) {
          await l1.table('users').insert(Array.from({ length: 1000 }, (_, index) => ({ id: start + index, name: `user ${start + index}`, email: `u${start + index}@example.com` })));
        }
        const l2 = await createShardKit(cachedConfig(false));
        kits.push(l2);
        // Warm entries for the keys the rounds read (100 keys, read round-robin).
        const key = (round: number) => (round % 100) + 1;
        for (let round = 0; round < 100; round++) {
          await l1.table('users').where('id', key(round)).first();
          await l2.table('users').where('id', key(round)).first();
        }
        const samples = await sampleInterleaved(
          {
            l1: (round) => l1.table('users').where('id', key(round)).first(),
            l2: (round) => l2.table('users').where('id', key(round)).first(),
            uncached: (round) => l1.table('users', { cache: false }).where('id', key(round)).first(),
          },
          ROUNDS,
        );
        const p50 = (name: string) => percentile(samples[name]!, 0.5);

        let hits = 0;
        const started = performance.now();
        while (performance.now() - started < 3000) {
          await l1.table('users').where('id', key(hits)).first();
          hits++;
        }
        const hitsPerSec = hits / ((performance.now() - started) / 1000);
        // The floor under any hit: building the same builder and awaiting once, with no cache or database.
        let built = 0;
        const buildStarted = performance.now();
        while (performance.now() - buildStarted < 1000) {
          l1.table('users').where('id', key(built)).first();
          await null;
          built++;
        }
        const builderOnlyPerSec = built / ((performance.now() - buildStarted) / 1000);

        l1.flushCache();
        const draw = zipf(ROWS, 1.1);
        const before = l1.cacheStats;
        let writes = 0;
        for (let read = 0; read < ZIPF_READS; read++) {
          const id = draw();
          if (read % 100 === 99) {
            await l1.table('users').where('id', id).update({ name: `renamed ${read}` });
            writes++;
          } else await l1.table('users').where('id', id).first();
        }
        const after = l1.cacheStats;
        const reads = ZIPF_READS - writes;
        const fromDatabase = after.misses - before.misses - (after.sharedHits - before.sharedHits);
        const zipfHitRatio = 1 - fromDatabase / reads;

        const ratio = (value: number) => Number(value.toFixed(3));
        console.log(
          renderTable(
            ['read', 'p50 ms', 'p99 ms', 'p50 / uncached'],
            (['l1', 'l2', 'uncached'] as const).map((name) => [
              name === 'l1' ? 'L1 hit (this process)' : name === 'l2' ? 'L2 hit (Redis, cache.local false)' : 'uncached routed read (primary)',
              Number(p50(name).toFixed(3)),
              Number(percentile(samples[name]!, 0.99).toFixed(3)),
              ratio(p50(name) / p50('uncached')),
            ]),
          ),
        );
        console.log(`L1 hits in one process, one after another: ${Math.round(hitsPerSec).toLocaleString('en-US')}/s`);
        console.log(`the same builder built and awaited once, nothing run: ${Math.round(builderOnlyPerSec).toLocaleString('en-US')}/s (hits at ${ratio(hitsPerSec / builderOnlyPerSec)} of it)`);
        console.log(`Zipf (s 1.1) over ${ROWS.toLocaleString('en-US')} keys, ${reads.toLocaleString('en-US')} reads and ${writes} writes: ${fromDatabase} reads went to the database, hit ratio ${(zipfHitRatio * 100).toFixed(1)}%`);
        console.log(
          JSON.stringify({
            bench: 'cache',
            l1HitP50Ratio: ratio(p50('l1') / p50('uncached')),
            l2HitP50Ratio: ratio(p50('l2') / p50('uncached')),
            l1HitsPerSec: Math.round(hitsPerSec),
            builderOnlyPerSec: Math.round(builderOnlyPerSec),
            zipfHitRatio: ratio(zipfHitRatio),
          }),
        );
      } finally {
        await Promise.all(kits.map((kit) => kit.close()));
      }
    }),
};
