/**
 * Rebalance: adds a third shard (another database on the first server of the local PostgreSQL
 * cluster) to two holding 300k users (`--rows N`), and measures
 *
 *   moved / ideal   the share of rows that ended on the new shard over the ideal 1/3
 *   rows moved/s    moving rows over the backfill's time, against a COPY of the same rows into a
 *                   table of the same definition on the new shard, in the same run
 *   rows read       whole rows the backfill read into Node per row moved, and shard-key values
 *                   it listed to find them (from the key's index)
 *   verify          moving rows compared per second (checksums on the servers)
 *   cleanup         rows deleted per second from the old owners
 *   memory          the process's RSS at the backfill's start and at its peak
 */
import { renderTable } from '../../lib/cli/render-table.js';
import { createShardKit, HashRing, SchemaMigrator, type ShardKit } from '../../lib/index.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { settleRebalance } from '../demo-reset.js';
import { withLocalCluster, withStandbyDatabaseShard } from '../local-cluster.js';
import { copyRows } from './bulk-copy.js';
import { generatedUsers, USER_COLUMNS } from './generated-users.js';
import { seconds } from './latency.js';
import { withPeakRss } from './peak-memory.js';

const DEFAULT_ROWS = 300_000;
const NEW_SHARD = 'pg-c';
const COPY_TABLE = 'users_copy_baseline';

/** No rows, no rebalance record: the cluster as the other suites expect it. */
async function startOver(kit: ShardKit): Promise<void> {
  await settleRebalance(kit);
  await Promise.all(
    kit.shardNames.map(async (shard) => {
      const db = kit.forShard(shard);
      for (const table of ['orders', 'users', 'users_v2']) await db(table).truncate();
      await db.schema.dropTableIfExists(COPY_TABLE);
    }),
  );
  await kit.rebalance().forget();
}

export const rebalanceBenchmark: Benchmark = {
  name: 'rebalance',
  description: ({ rows = DEFAULT_ROWS }) => `add a third PostgreSQL shard to two holding ${rows.toLocaleString('en')} users: moved share vs ideal, rows moved/s vs COPY`,
  run: ({ rows: ROWS = DEFAULT_ROWS }) =>
    withLocalCluster(async () => {
      const usersWhere = (keep: (id: number) => boolean) => generatedUsers(ROWS, keep);
      const kit = await createShardKit(await withStandbyDatabaseShard(clusterConfig, NEW_SHARD));
      try {
        await new SchemaMigrator(kit).latest();
        await startOver(kit);
        await Promise.all(kit.topology.ring.shardNames.map((shard) => copyRows(kit.forShard(shard), 'users', USER_COLUMNS, usersWhere((id) => kit.shardFor(id) === shard))));

        const rebalance = kit.rebalance();
        const plan = await rebalance.start({ add: [NEW_SHARD] });
        const after = await HashRing.create(plan.after);
        const moving = (id: number) => after.shardFor(id) === NEW_SHARD;
        await kit.forShard(NEW_SHARD).raw('CREATE TABLE ?? (LIKE ?? INCLUDING ALL)', [COPY_TABLE, 'users']);
        const copySeconds = await seconds(() => copyRows(kit.forShard(NEW_SHARD), COPY_TABLE, USER_COLUMNS, usersWhere(moving)));

        await rebalance.phases.advance({ waitForAcksMs: 10_000 });
        await rebalance.phases.advance({ waitForAcksMs: 10_000 });
        // What the backfill walked (its progress: shard-key values) and the whole rows it read into Node.
        const walkedPerShard = new Map<string, number>();
        const throttledPauses: string[] = [];
        let rowsRead = 0;
        const countRows = (response: unknown, query: { sql?: string }) => {
          if (/^select \* from "users"/i.test(query.sql ?? '') && Array.isArray(response)) rowsRead += response.length;
        };
        for (const shard of kit.topology.shards) shard.primary.knex.on('query-response', countRows);
        const { result: backfillSeconds, startRssMb, peakRssMb, startHeapMb, endHeapMb } = await withPeakRss(() =>
          seconds(() =>
            rebalance.phases.backfill({
              onProgress: ({ shard, copied, throttled }) => {
                walkedPerShard.set(shard, copied);
                if (throttled) throttledPauses.push(throttled);
              },
            }),
          ),
        );
        for (const shard of kit.topology.shards) shard.primary.knex.off('query-response', countRows);
        const keysWalked = [...walkedPerShard.values()].reduce((sum, count) => sum + count, 0);
        await rebalance.phases.advance({ waitForAcksMs: 10_000 });
        let verify: Awaited<ReturnType<typeof rebalance.phases.verify>> | undefined;
        const verifySeconds = await seconds(async () => {
          verify = await rebalance.phases.verify();
        });
        for (let step = 0; step < 3; step++) await rebalance.phases.advance({ waitForAcksMs: 10_000 });
        const cleanupSeconds = await seconds(() => rebalance.cleanup());

        const counts = await Promise.all(kit.shardNames.map(async (shard) => Number(((await kit.forShard(shard)('users').count('* as n').first()) as { n: unknown }).n)));
        const total = counts.reduce((sum, count) => sum + count, 0);
        const moved = counts[kit.shardNames.indexOf(NEW_SHARD)]!;
        if (total !== ROWS || !verify || verify.unrepaired > 0) throw new Error(`expected ${ROWS} rows after the move, found ${total} (${verify?.unrepaired} unrepaired)`);
        const rowsReadPerRowMoved = Number((rowsRead / moved).toFixed(2));
        const verifyRowsPerSec = Math.round(verify.rowsChecked / verifySeconds);
        const movedOverIdeal = Number((moved / total / plan.slots.idealFraction).toFixed(3));
        const rowsPerSec = moved / backfillSeconds;
        const copyRate = moved / copySeconds;
        console.log(
          renderTable(
            ['measure', 'value'],
            [
              ['rows moved to the new shard / all rows', `${moved} / ${total} = ${((moved / total) * 100).toFixed(2)}%`],
              ['ideal share (1/3)', `${(plan.slots.idealFraction * 100).toFixed(2)}%`],
              ['moved / ideal', movedOverIdeal],
              ['slots moved between the two old shards (plan)', plan.slots.movedBetweenUnchanged],
              ['backfill: seconds, rows moved/s', `${backfillSeconds.toFixed(1)} s, ${Math.round(rowsPerSec)} rows/s`],
              ['backfill: throttled pauses (100 ms each)', throttledPauses.length],
              ['backfill: whole rows read, per row moved', `${rowsRead}, ${rowsReadPerRowMoved}`],
              ['backfill: keys listed (index), per row moved', `${keysWalked}, ${(keysWalked / moved).toFixed(2)}`],
              ['backfill: RSS at start, at peak', `${startRssMb} MB, ${peakRssMb} MB`],
              ['backfill: heap after GC at start, at end', `${startHeapMb} MB, ${endHeapMb} MB`],
              ['verify (checksums on the servers): seconds, rows/s', `${verifySeconds.toFixed(1)} s, ${verifyRowsPerSec} rows/s`],
              ['verify: differences found (repaired)', `${verify.differences} (${verify.repaired})`],
              ['COPY of the same rows: seconds, rows/s', `${copySeconds.toFixed(1)} s, ${Math.round(copyRate)} rows/s`],
              ['rows moved/s / COPY', (rowsPerSec / copyRate).toFixed(3)],
              ['cleanup (old owners delete): seconds, rows/s', `${cleanupSeconds.toFixed(1)} s, ${Math.round(moved / cleanupSeconds)} rows/s`],
            ],
          ),
        );
        console.log(JSON.stringify({ bench: 'rebalance', movedOverIdeal, rowsPerSec: Math.round(rowsPerSec), ratioVsCopy: Number((rowsPerSec / copyRate).toFixed(3)), cleanupRowsPerSec: Math.round(moved / cleanupSeconds), rowsReadPerRowMoved, keysListedPerRowMoved: Number((keysWalked / moved).toFixed(2)), verifyRowsPerSec, rows: ROWS, peakRssMb, startHeapMb, endHeapMb }));
      } finally {
        await startOver(kit).catch(() => undefined);
        await kit.close();
      }
    }),
};
