/**
 * Rebalance: adds a third shard (another database on the first server of the local PostgreSQL
 * cluster) to two holding 300k users, and measures
 *
 *   moved / ideal   the share of rows that ended on the new shard over the ideal 1/3
 *   rows moved/s    moving rows over the backfill's time (it reads every row to find them),
 *                   against a COPY of the same rows into a table of the same definition on the
 *                   new shard, in the same run
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

const ROWS = Number(process.env.REBALANCE_ROWS ?? 300_000);
const NEW_SHARD = 'pg-c';
const COPY_TABLE = 'users_copy_baseline';
const usersWhere = (keep: (id: number) => boolean) => generatedUsers(ROWS, keep);

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
  description: `add a third PostgreSQL shard to two holding ${ROWS.toLocaleString('en')} users: moved share vs ideal, rows moved/s vs COPY`,
  run: () =>
    withLocalCluster(async () => {
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
        const backfillSeconds = await seconds(() => rebalance.phases.backfill());
        await rebalance.phases.advance({ waitForAcksMs: 10_000 });
        const verify = await rebalance.phases.verify();
        for (let step = 0; step < 3; step++) await rebalance.phases.advance({ waitForAcksMs: 10_000 });
        const cleanupSeconds = await seconds(() => rebalance.cleanup());

        const counts = await Promise.all(kit.shardNames.map(async (shard) => Number(((await kit.forShard(shard)('users').count('* as n').first()) as { n: unknown }).n)));
        const total = counts.reduce((sum, count) => sum + count, 0);
        const moved = counts[kit.shardNames.indexOf(NEW_SHARD)]!;
        if (total !== ROWS || verify.unrepaired > 0) throw new Error(`expected ${ROWS} rows after the move, found ${total} (${verify.unrepaired} unrepaired)`);
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
              ['backfill: rows read/s (every row is read to find the moving ones)', Math.round(ROWS / backfillSeconds)],
              ['COPY of the same rows: seconds, rows/s', `${copySeconds.toFixed(1)} s, ${Math.round(copyRate)} rows/s`],
              ['rows moved/s / COPY', (rowsPerSec / copyRate).toFixed(3)],
              ['cleanup (delete from the old owners): seconds, rows/s', `${cleanupSeconds.toFixed(1)} s, ${Math.round(moved / cleanupSeconds)} rows/s`],
            ],
          ),
        );
        console.log(JSON.stringify({ bench: 'rebalance', movedOverIdeal, rowsPerSec: Math.round(rowsPerSec), ratioVsCopy: Number((rowsPerSec / copyRate).toFixed(3)), cleanupRowsPerSec: Math.round(moved / cleanupSeconds), rows: ROWS }));
      } finally {
        await startOver(kit).catch(() => undefined);
        await kit.close();
      }
    }),
};
