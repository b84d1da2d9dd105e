/**
 * Overload on the local PostgreSQL cluster: a closed loop of callers at twice what one shard's
 * primary serves, each asking for a CPU-bound read (a regexp_replace over a long string) with a
 * deadline, once through a kit with today's fixed limits and once with `loadShedding.adaptive`,
 * alternating in rounds of the same run:
 *
 *   capacity   the primary's pool (loadShedding.maxInFlight 10): 2x is 20 callers
 *   deadline   5x the read's latency alone, measured first (OVERLOAD_DEADLINE_FACTOR=N for Nx)
 *   callers    retry at once after a timeout, after `retryAfterMs` after a shed (as a client
 *              honouring Retry-After does)
 *   goodput    reads answered within their deadline per second
 *
 * Last line: {"bench":"overload","goodputRatioVsFixed":..,"admittedP99Ms":..,"fixedP99Ms":..}
 */
import { renderTable } from '../../lib/cli/render-table.js';
import { createShardKit, SchemaMigrator, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { withLocalCluster } from '../local-cluster.js';
import { percentile } from './latency.js';

const POOL = 10;
const CALLERS = 2 * POOL;
const ROUND_MS = 4000;
const ROUNDS = 3;
const SERIES = 200_000;
/** The deadline, in multiples of the read's latency alone. */
const DEADLINE_FACTOR = Number(process.env.OVERLOAD_DEADLINE_FACTOR ?? 5);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RoundResult {
  answered: number[];
  failed: number;
  seconds: number;
}

export const overloadBenchmark: Benchmark = {
  name: 'overload',
  description: `${CALLERS} closed-loop callers of CPU-bound reads on one primary (pool ${POOL}): goodput with adaptive limits vs fixed, ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s`,
  run: () =>
    withLocalCluster(async () => {
      const config = (adaptive: boolean): ShardKitConfig => ({ ...clusterConfig, loadShedding: { maxInFlight: POOL, maxQueued: 100, adaptive: adaptive ? { windowMs: 250 } : false } });
      const kits: Record<'fixed' | 'adaptive', ShardKit> = { fixed: await createShardKit(config(false)), adaptive: await createShardKit(config(true)) };
      try {
        const { fixed } = kits;
        await new SchemaMigrator(fixed).latest();
        const shard = fixed.shardNames[0]!;
        const key = Array.from({ length: 100 }, (_, index) => index + 1).find((id) => fixed.shardFor(id) === shard)!;
        await fixed.table('users').insert({ id: key, name: 'busy', email: `busy${key}@example.com` }).onConflict('id').merge();
        const read = (kit: ShardKit, timeoutMs: number) =>
          kit
            .table('users', { read: 'primary', timeoutMs })
            .where('id', key)
            .select(kit.forShard(shard).raw(`length(regexp_replace(repeat('ab', ${SERIES}), 'a', 'c', 'g')) as n`));

        // The read alone, warm: its latency sets the deadline.
        const alone: number[] = [];
        for (let call = 0; call < 30; call++) {
          const started = performance.now();
          await read(fixed, 10_000);
          alone.push(performance.now() - started);
        }
        const aloneMs = percentile(alone, 0.5);
        const deadlineMs = Math.round(DEADLINE_FACTOR * aloneMs);

        const round = async (kit: ShardKit): Promise<RoundResult> => {
          const answered: number[] = [];
          let failed = 0;
          const started = performance.now();
          const until = started + ROUND_MS;
          await Promise.all(
            Array.from({ length: CALLERS }, async () => {
              while (performance.now() < until) {
                const began = performance.now();
                try {
                  await read(kit, deadlineMs);
                  answered.push(performance.now() - began);
                } catch (error) {
                  failed++;
                  const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
                  if (retryAfterMs !== undefined) await sleep(Math.min(retryAfterMs, Math.max(0, until - performance.now())));
                }
              }
            }),
          );
          return { answered, failed, seconds: (performance.now() - started) / 1000 };
        };
        const results: Record<'fixed' | 'adaptive', RoundResult[]> = { fixed: [], adaptive: [] };
        for (let index = 0; index < ROUNDS; index++) {
          for (const name of ['fixed', 'adaptive'] as const) {
            results[name].push(await round(kits[name]));
            // Let the server finish cancelled statements before the other variant runs.
            await sleep(500);
          }
        }
        const summary = (name: 'fixed' | 'adaptive') => {
          const answered = results[name].flatMap((result) => result.answered);
          const seconds = results[name].reduce((sum, result) => sum + result.seconds, 0);
          return {
            goodput: answered.length / seconds,
            failed: results[name].reduce((sum, result) => sum + result.failed, 0),
            p50: percentile(answered, 0.5),
            p99: percentile(answered, 0.99),
          };
        };
        const fixedSummary = summary('fixed');
        const adaptiveSummary = summary('adaptive');
        console.log(`the read alone: p50 ${aloneMs.toFixed(1)} ms; deadline ${deadlineMs} ms; ${CALLERS} callers`);
        console.log(
          renderTable(
            ['limits', 'answered/s', 'failed', 'p50 ms', 'p99 ms'],
            [
              ['fixed (maxInFlight 10)', Number(fixedSummary.goodput.toFixed(1)), fixedSummary.failed, Number(fixedSummary.p50.toFixed(1)), Number(fixedSummary.p99.toFixed(1))],
              ['adaptive', Number(adaptiveSummary.goodput.toFixed(1)), adaptiveSummary.failed, Number(adaptiveSummary.p50.toFixed(1)), Number(adaptiveSummary.p99.toFixed(1))],
            ],
          ),
        );
        console.log(
          JSON.stringify({
            bench: 'overload',
            goodputRatioVsFixed: Number((adaptiveSummary.goodput / fixedSummary.goodput).toFixed(3)),
            admittedP99Ms: Number(adaptiveSummary.p99.toFixed(1)),
            fixedP99Ms: Number(fixedSummary.p99.toFixed(1)),
          }),
        );
      } finally {
        await Promise.all(Object.values(kits).map((kit) => kit.close()));
      }
    }),
};
