/**
 * Backfill throughput: `users` -> `users_v2` (migrations/online/users-v2.ts) for 1M rows spread
 * over the two PostgreSQL shards of the local cluster, against a plain COPY of the same
 * transformed rows into a table of the same definition on the same shards, in the same run.
 * The backfill runs with its defaults (batches of 5000, replica-lag throttling on), so the
 * figure is what a user gets; COPY gets its rows ready-made from memory, the backfill reads
 * them from the source table, transforms them and writes them with insert-if-absent.
 */
import { renderTable } from '../../lib/cli/render-table.js';
import { createShardKit, SchemaMigrator, type ShardKit } from '../../lib/index.js';
import { usersV2 } from '../../migrations/online/users-v2.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { withLocalCluster } from '../local-cluster.js';
import { resetOnlineMigration } from '../demo-reset.js';
import { copyRows } from './bulk-copy.js';
import { generatedUsers, USER_COLUMNS } from './generated-users.js';
import { seconds } from './latency.js';
import { withPeakRss } from './peak-memory.js';

const DEFAULT_ROWS = 1_000_000;
const COPY_TABLE = 'users_v2_copy_baseline';
const TARGET_COLUMNS = ['id', 'first_name', 'last_name', 'email', 'created_at'];
const usersOn = (kit: ShardKit, shard: string, rows: number) => generatedUsers(rows, (id) => kit.shardFor(id) === shard);

function* transformed(rows: Iterable<Record<string, unknown>>): Generator<Record<string, unknown>> {
  for (const row of rows) yield usersV2.transform(row);
}

async function emptyTables(kit: ShardKit): Promise<void> {
  await resetOnlineMigration(kit, usersV2.name);
  await Promise.all(
    kit.shardNames.map(async (shard) => {
      const db = kit.forShard(shard);
      await db('users').truncate();
      await db.schema.dropTableIfExists(COPY_TABLE);
    }),
  );
}

export const backfillBenchmark: Benchmark = {
  name: 'backfill',
  description: ({ rows = DEFAULT_ROWS }) => `online-migration backfill of ${rows.toLocaleString('en')} rows over 2 PostgreSQL shards vs COPY of the same rows`,
  run: ({ rows: ROWS = DEFAULT_ROWS }) =>
    withLocalCluster(async () => {
      const kit = await createShardKit({ ...clusterConfig, onlineMigrations: [usersV2] });
      try {
        await new SchemaMigrator(kit).latest();
        await emptyTables(kit);
        const loadSeconds = await seconds(() => Promise.all(kit.shardNames.map((shard) => copyRows(kit.forShard(shard), 'users', USER_COLUMNS, usersOn(kit, shard, ROWS)))));
        console.log(`loaded ${ROWS} source rows with COPY in ${loadSeconds.toFixed(1)} s`);

        await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard).raw('CREATE TABLE ?? (LIKE ?? INCLUDING ALL)', [COPY_TABLE, 'users_v2'])));
        let copied = 0;
        const copySeconds = await seconds(async () => {
          const counts = await Promise.all(kit.shardNames.map((shard) => copyRows(kit.forShard(shard), COPY_TABLE, TARGET_COLUMNS, transformed(usersOn(kit, shard, ROWS)))));
          copied = counts.reduce((sum, count) => sum + count, 0);
        });

        const runner = kit.onlineMigration(usersV2.name);
        await runner.start();
        await runner.advance({ waitForAcksMs: 10_000 });
        let throttledPauses = 0;
        const { result: backfillSeconds, startRssMb, peakRssMb, startHeapMb, endHeapMb } = await withPeakRss(() =>
          seconds(() =>
            runner.backfill({
              onProgress: (progress) => {
                if (progress.throttled) throttledPauses++;
              },
            }),
          ),
        );
        const counts = await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard)('users_v2').count('* as n')));
        const backfilled = counts.reduce((sum, [row]) => sum + Number((row as { n: unknown }).n), 0);
        if (copied !== ROWS || backfilled !== ROWS) throw new Error(`expected ${ROWS} rows, COPY took ${copied} and the backfill wrote ${backfilled}`);

        const copyRate = ROWS / copySeconds;
        const backfillRate = ROWS / backfillSeconds;
        const ratio = Number((backfillRate / copyRate).toFixed(3));
        console.log(
          renderTable(
            ['measure', 'seconds', 'rows/s', 'ratio vs COPY'],
            [
              [`COPY of ${ROWS} transformed rows, 2 shards in parallel`, copySeconds.toFixed(1), Math.round(copyRate), 1],
              [`backfill (batches of 5000, ${throttledPauses} throttled pauses)`, backfillSeconds.toFixed(1), Math.round(backfillRate), ratio],
            ],
          ),
        );
        console.log(`backfill memory: RSS ${startRssMb} MB at its start, ${peakRssMb} MB at its peak; heap after GC ${startHeapMb} MB at its start, ${endHeapMb} MB at its end`);
        console.log(JSON.stringify({ bench: 'backfill', ratioVsCopy: ratio, rowsPerSec: Math.round(backfillRate), copyRowsPerSec: Math.round(copyRate), rows: ROWS, peakRssMb, startRssMb, startHeapMb, endHeapMb }));
      } finally {
        await emptyTables(kit).catch(() => undefined);
        await kit.close();
      }
    }),
};
