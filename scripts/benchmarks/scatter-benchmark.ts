/**
 * Scatter-gather:
 *
 *   fan-out   a top-N query and a grouped aggregate over every shard of the local PostgreSQL
 *             cluster, against the slowest of the same per-shard queries run alone with plain
 *             knex, interleaved in one run (scatter wall time / slowest shard)
 *   merge     the k-way merge alone: 1M rows from 4 sorted sources, rows per second, and memory
 *             after a forced GC every 100k rows (growth per million rows: flat means bounded)
 *   stream    a real stream of every row of a 200k-row table through the merge, same memory probe
 */
import knexModule, { type Knex } from 'knex';
import { renderTable } from '../../lib/cli/render-table.js';
import { rowComparator } from '../../lib/engine/merge/compare-values.js';
import { mergeSorted } from '../../lib/engine/merge/k-way-merge.js';
import { shardQuery } from '../../lib/engine/shard-query.js';
import { createShardKit, SchemaMigrator, type ShardKit } from '../../lib/index.js';
import type { AnyQueryBuilder } from '../../lib/knex/builder-internals.js';
import type { SortKey } from '../../lib/planner/merge-spec.js';
import { targetShards } from '../../lib/planner/query-plan.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { withLocalCluster } from '../local-cluster.js';
import { percentile } from './latency.js';

const ORDERS = 200_000;
const MERGE_ROWS = 1_000_000;
const ROUNDS = 40;

/** Memory after a full collection (node runs the benchmarks with --expose-gc), in MB. */
function memoryMB(): { heap: number; rss: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed / 1024 / 1024, rss: rss / 1024 / 1024 };
}

/** Rows per second through `source`, and memory growth per million rows between probes every 100k rows. */
async function drain(source: AsyncIterable<unknown>, expected: number) {
  const samples: { rows: number; heap: number; rss: number }[] = [];
  let rows = 0;
  const started = performance.now();
  let paused = 0;
  for await (const _row of source) {
    rows++;
    if (rows % 100_000 === 0) {
      const probe = performance.now();
      samples.push({ rows, ...memoryMB() });
      paused += performance.now() - probe;
    }
  }
  const seconds = (performance.now() - started - paused) / 1000;
  if (rows !== expected) throw new Error(`expected ${expected} rows, got ${rows}`);
  // From the second probe on: the first includes buffers and JIT warming up.
  const first = samples[1] ?? samples[0]!;
  const last = samples.at(-1)!;
  const perMillion = (from: number, to: number) => (last.rows > first.rows ? ((to - from) / (last.rows - first.rows)) * 1_000_000 : 0);
  return { rowsPerSec: rows / seconds, heapGrowth: perMillion(first.heap, last.heap), rssGrowth: perMillion(first.rss, last.rss) };
}

async function* sortedSource(shard: number, count: number): AsyncGenerator<Record<string, unknown>> {
  for (let index = 0; index < count; index++) yield { id: index * 4 + shard, amount: (index * 7919 + shard) % 10_000 };
}

async function loadOrders(kit: ShardKit): Promise<void> {
  await new SchemaMigrator(kit).latest();
  await kit.allShards('orders').del();
  for (let start = 0; start < ORDERS; start += 5000) {
    await kit.table('orders').insert(
      Array.from({ length: 5000 }, (_, index) => {
        const id = start + index + 1;
        return { user_id: (id * 2_654_435_761) % 50_000, id, amount_cents: (id * 7919) % 100_000, status: ['new', 'paid', 'sent'][id % 3] };
      }),
    );
  }
}

/** Median wall time of the scatter and of the slowest shard running its part alone. */
async function fanOut(kit: ShardKit, build: () => unknown, plain: Map<string, Knex>) {
  const builder = build() as AnyQueryBuilder;
  const plan = kit.explain(builder as never);
  const perShard = targetShards(plan.route).map((shard) => ({ shard, sql: shardQuery(builder, plan, shard).toSQL() }));
  const scatter: number[] = [];
  const slowest: number[] = [];
  for (let round = 0; round < ROUNDS + 5; round++) {
    let started = performance.now();
    await (build() as Promise<unknown>);
    const scatterMs = performance.now() - started;
    let slowestMs = 0;
    for (const { shard, sql } of perShard) {
      started = performance.now();
      await plain.get(shard)!.raw(sql.sql, sql.bindings as never);
      slowestMs = Math.max(slowestMs, performance.now() - started);
    }
    if (round >= 5) {
      scatter.push(scatterMs);
      slowest.push(slowestMs);
    }
  }
  return { scatterMs: percentile(scatter, 0.5), slowestMs: percentile(slowest, 0.5) };
}

export const scatterBenchmark: Benchmark = {
  name: 'scatter',
  description: `fan-out vs slowest shard (local PostgreSQL cluster), k-way merge of ${MERGE_ROWS.toLocaleString('en')} rows, streaming`,
  run: () =>
    withLocalCluster(async () => {
      const kit = await createShardKit(clusterConfig);
      const plain = new Map(
        clusterConfig.shards.map((shard) => [shard.name, knexModule.knex({ client: 'pg', connection: shard.primary.connection as never, pool: { min: 1, max: 2 } })]),
      );
      try {
        await loadOrders(kit);
        const topN = await fanOut(kit, () => kit.table('orders').select('id', 'amount_cents').where('status', 'paid').orderBy('amount_cents', 'desc').orderBy('id').limit(100), plain);
        const grouped = await fanOut(kit, () => kit.table('orders').select('status').count('* as n').avg('amount_cents as mean').groupBy('status').orderBy('status'), plain);

        const keys: SortKey[] = [{ column: 'id', direction: 'asc', nulls: 'last', expression: { kind: 'column', table: undefined, name: 'id' } }];
        const merge = await drain(
          mergeSorted([0, 1, 2, 3].map((shard) => sortedSource(shard, MERGE_ROWS / 4)), rowComparator(keys, () => 'exact')),
          MERGE_ROWS,
        );
        const stream = await drain(kit.table('orders').select('id', 'amount_cents').orderBy('id').stream(), ORDERS);

        const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
        console.log(
          renderTable(
            ['measure', 'value', 'baseline', 'ratio'],
            [
              ['top-100 over 2 shards: scatter ms / slowest shard ms', Number(topN.scatterMs.toFixed(2)), Number(topN.slowestMs.toFixed(2)), ratio(topN.scatterMs, topN.slowestMs)],
              ['GROUP BY + AVG over 2 shards: scatter ms / slowest shard ms', Number(grouped.scatterMs.toFixed(2)), Number(grouped.slowestMs.toFixed(2)), ratio(grouped.scatterMs, grouped.slowestMs)],
              ['k-way merge, 4 sources: rows/s', Math.round(merge.rowsPerSec), '', ''],
              ['k-way merge: heap / RSS growth, MB per 1M rows', `${merge.heapGrowth.toFixed(2)} / ${merge.rssGrowth.toFixed(2)}`, '', ''],
              [`stream ${ORDERS} rows from 2 shards: rows/s`, Math.round(stream.rowsPerSec), '', ''],
              ['stream: heap / RSS growth, MB per 1M rows', `${stream.heapGrowth.toFixed(2)} / ${stream.rssGrowth.toFixed(2)}`, '', ''],
            ],
          ),
        );
        console.log(
          JSON.stringify({
            bench: 'scatter',
            wallOverSlowestShard: ratio(topN.scatterMs, topN.slowestMs),
            aggregateWallOverSlowestShard: ratio(grouped.scatterMs, grouped.slowestMs),
            mergeRowsPerSec: Math.round(merge.rowsPerSec),
            rssGrowthMBPerMillionRows: Number(merge.rssGrowth.toFixed(2)),
            heapGrowthMBPerMillionRows: Number(merge.heapGrowth.toFixed(2)),
            streamRowsPerSec: Math.round(stream.rowsPerSec),
            streamRssGrowthMBPerMillionRows: Number(stream.rssGrowth.toFixed(2)),
          }),
        );
      } finally {
        await kit.allShards('orders').del();
        await Promise.all([...plain.values()].map((db) => db.destroy()));
        await kit.close();
      }
    }),
};
