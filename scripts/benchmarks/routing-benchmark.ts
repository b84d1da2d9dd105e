/**
 * Routing: shardkit's ring against the npm `hashring` package (ketama: md5, 160 points per
 * server), both fed the same 1M distinct string keys in one process.
 *
 *   throughput    keys routed per second, shardkit / hashring, at 16 and 64 shards
 *   balance       busiest shard's keys / mean keys per shard
 *   movement      16 -> 17 shards: keys that changed owner / the ideal 1/17, and how many
 *                 moved between two shards that exist before and after (should be 0)
 *   removal       16 -> 15 (shard-7 removed): moved / shard-7's share, and moves among the rest
 *   weights       one shard of weight 2 among 15 of weight 1: its share / the ideal 2/17
 */
import HashRingBaseline from 'hashring';
import { renderTable } from '../../lib/cli/render-table.js';
import { HashRing, type RingShard } from '../../lib/hashing/hash-ring.js';
import type { Benchmark } from '../bench.js';

const KEY_COUNT = 1_000_000;
const keys = Array.from({ length: KEY_COUNT }, (_, index) => `user:${index.toString(36)}:${(index * 2_654_435_761) % 1_000_003}`);
const names = (count: number) => Array.from({ length: count }, (_, index) => `shard-${index + 1}`);
const equal = (count: number): RingShard[] => names(count).map((name) => ({ name, weight: 1 }));

function opsPerSecond(route: (key: string) => string, runs: number): number {
  for (let index = 0; index < 50_000; index++) route(keys[index]!);
  const rates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    for (const key of keys) route(key);
    rates.push(KEY_COUNT / ((performance.now() - start) / 1000));
  }
  return rates.sort((a, b) => a - b)[Math.floor(rates.length / 2)]!;
}

function owners(route: (key: string) => string): string[] {
  return keys.map(route);
}

function maxOverMean(assigned: readonly string[], shardCount: number): number {
  const load = new Map<string, number>();
  for (const shard of assigned) load.set(shard, (load.get(shard) ?? 0) + 1);
  return Math.max(...load.values()) / (KEY_COUNT / shardCount);
}

function movement(before: readonly string[], after: readonly string[], existing: ReadonlySet<string>) {
  let moved = 0;
  let betweenExisting = 0;
  for (let index = 0; index < before.length; index++) {
    if (before[index] === after[index]) continue;
    moved++;
    if (existing.has(before[index]!) && existing.has(after[index]!)) betweenExisting++;
  }
  return { moved, betweenExisting };
}

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

export const routingBenchmark: Benchmark = {
  name: 'routing',
  description: `shardkit ring vs npm hashring on ${KEY_COUNT.toLocaleString('en')} distinct string keys`,
  async run() {
    const rows: (string | number)[][] = [];
    const results: Record<string, number> = {};
    for (const count of [16, 64]) {
      const ring = await HashRing.create(equal(count));
      const baseline = new HashRingBaseline(names(count));
      const ours = opsPerSecond((key) => ring.shardFor(key), 3);
      const theirs = opsPerSecond((key) => baseline.get(key), 1);
      const balance = maxOverMean(owners((key) => ring.shardFor(key)), count);
      const baselineBalance = maxOverMean(owners((key) => baseline.get(key)), count);
      results[`opsRatioVsHashring${count}`] = round(ours / theirs, 2);
      results[`maxOverMean${count}`] = round(balance, 4);
      rows.push([`${count} shards: keys/s`, Math.round(ours), Math.round(theirs), round(ours / theirs, 2)]);
      rows.push([`${count} shards: max/mean load`, round(balance, 4), round(baselineBalance, 4), '']);
    }

    const base = await HashRing.create(equal(16));
    const before = owners((key) => base.shardFor(key));
    const added = await HashRing.create(equal(17));
    const grow = movement(before, owners((key) => added.shardFor(key)), new Set(names(16)));
    results.movedOverIdeal = round(grow.moved / KEY_COUNT / (1 / 17), 4);
    results.movedBetweenExisting = grow.betweenExisting;
    rows.push(['16 -> 17: moved / ideal 1/17', results.movedOverIdeal, '', '']);
    rows.push(['16 -> 17: moved between existing', grow.betweenExisting, '', '']);

    const removed = await HashRing.create(equal(16).filter((shard) => shard.name !== 'shard-7'));
    const shrink = movement(before, owners((key) => removed.shardFor(key)), new Set(names(16).filter((name) => name !== 'shard-7')));
    const removedShare = before.filter((shard) => shard === 'shard-7').length;
    results.removalMovedOverIdeal = round(shrink.moved / removedShare, 4);
    results.removalMovedBetweenOthers = shrink.betweenExisting;
    rows.push(['16 -> 15 (remove shard-7): moved / its keys', results.removalMovedOverIdeal, '', '']);
    rows.push(['16 -> 15: moved between the others', shrink.betweenExisting, '', '']);

    const weighted = await HashRing.create(equal(16).map((shard) => (shard.name === 'shard-1' ? { ...shard, weight: 2 } : shard)));
    const heavyShare = owners((key) => weighted.shardFor(key)).filter((shard) => shard === 'shard-1').length / KEY_COUNT;
    results.weight2ShareOverIdeal = round(heavyShare / (2 / 17), 4);
    rows.push(['weight 2 among 15x weight 1: share / ideal 2/17', results.weight2ShareOverIdeal, '', '']);

    console.log(renderTable(['measure', 'shardkit', 'hashring', 'ratio'], rows));
    console.log(JSON.stringify({ bench: 'routing', ...results }));
  },
};
