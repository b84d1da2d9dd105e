/**
 * Rebalance: adds a third shard (another database on the first server of the local PostgreSQL
 * cluster) to two holding 300k users (`--rows N`), twice in one run: first with the key walk
 * (every shard-key value listed from the key's index, the moving ones' rows read), then with a
 * slot column (`tables.users.slotColumn`: only the moving rows found, by the slot index). Each
 * run measures
 *
 *   moved / ideal   the share of rows that ended on the new shard over the ideal 1/3
 *   rows moved/s    moving rows over the backfill's time, against a COPY of the same rows into a
 *                   table of the same definition on the new shard, in the same run
 *   rows read       whole rows the backfill read into Node per row moved, and shard-key values
 *                   it listed to find them
 *   verify          moving rows compared per second (checksums on the servers)
 *   cleanup         rows deleted per second from the old owners
 *   memory          the process's RSS at the backfill's start and at its peak
 *
 * The last JSON line holds the slot column's figures, and the key walk's under `keyWalk`.
 */
import { renderTable } from '../../lib/cli/render-table.js';
import { addSlotColumn, createShardKit, HashRing, SchemaMigrator, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
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
const SLOT_COLUMN = 'shard_slot';

/** No rows, no rebalance record: the cluster as the other suites expect it (users without a slot column). */
async function startOver(kit: ShardKit): Promise<void> {
  await settleRebalance(kit);
  await Promise.all(
    kit.shardNames.map(async (shard) => {
      const db = kit.forShard(shard);
      for (const table of ['orders', 'users', 'users_v2']) await db(table).truncate();
      await db.schema.dropTableIfExists(COPY_TABLE);
      if (await db.schema.hasColumn('users', SLOT_COLUMN)) {
        await db.raw('drop trigger if exists ?? on users', [`users_${SLOT_COLUMN}_reset`]);
        await db.schema.alterTable('users', (table) => table.dropColumn(SLOT_COLUMN));
      }
    }),
  );
  await kit.rebalance().forget();
}

type Walk = 'key walk' | 'slot column';

interface Measured {
  moved: number;
  total: number;
  idealFraction: number;
  movedBetweenUnchanged: number;
  backfillSeconds: number;
  throttledPauses: number;
  rowsRead: number;
  keysListed: number;
  startRssMb: number;
  peakRssMb: number;
  startHeapMb: number | undefined;
  endHeapMb: number | undefined;
  verifySeconds: number;
  verifyRowsChecked: number;
  differences: number;
  repaired: number;
  copySeconds: number;
  cleanupSeconds: number;
}

async function measure(config: ShardKitConfig, walk: Walk, rows: number): Promise<Measured> {
  const slotted = walk === 'slot column';
  const kit = await createShardKit(slotted ? { ...config, tables: { ...config.tables, users: { shardKey: 'id', slotColumn: SLOT_COLUMN } } } : config);
  try {
    await new SchemaMigrator(kit).latest();
    await startOver(kit);
    const ring = kit.topology.ring;
    const columns = slotted ? [...USER_COLUMNS, SLOT_COLUMN] : USER_COLUMNS;
    // As the kit's inserts write them: every row with its slot.
    const withSlots = function* (users: Iterable<Record<string, unknown>>) {
      for (const user of users) yield slotted ? { ...user, [SLOT_COLUMN]: ring.slotOf(user.id) } : user;
    };
    await Promise.all(
      ring.shardNames.map(async (shard) => {
        if (slotted) await addSlotColumn(kit.forShard(shard), 'users', { shardKey: 'id', column: SLOT_COLUMN });
        await copyRows(kit.forShard(shard), 'users', columns, withSlots(generatedUsers(rows, (id) => kit.shardFor(id) === shard)));
      }),
    );
    if (slotted) await addSlotColumn(kit.forShard(NEW_SHARD), 'users', { shardKey: 'id', column: SLOT_COLUMN });

    const rebalance = kit.rebalance();
    const plan = await rebalance.start({ add: [NEW_SHARD] });
    const after = await HashRing.create(plan.after);
    const moving = (id: number) => after.shardFor(id) === NEW_SHARD;
    await kit.forShard(NEW_SHARD).raw('CREATE TABLE ?? (LIKE ?? INCLUDING ALL)', [COPY_TABLE, 'users']);
    const copySeconds = await seconds(() => copyRows(kit.forShard(NEW_SHARD), COPY_TABLE, columns, withSlots(generatedUsers(rows, moving))));

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
    if (total !== rows || !verify || verify.unrepaired > 0) throw new Error(`expected ${rows} rows after the move, found ${total} (${verify?.unrepaired} unrepaired)`);
    return {
      moved,
      total,
      idealFraction: plan.slots.idealFraction,
      movedBetweenUnchanged: plan.slots.movedBetweenUnchanged,
      backfillSeconds,
      throttledPauses: throttledPauses.length,
      rowsRead,
      keysListed: keysWalked,
      startRssMb,
      peakRssMb,
      startHeapMb,
      endHeapMb,
      verifySeconds,
      verifyRowsChecked: verify.rowsChecked,
      differences: verify.differences,
      repaired: verify.repaired,
      copySeconds,
      cleanupSeconds,
    };
  } finally {
    await startOver(kit).catch(() => undefined);
    await kit.close();
  }
}

/** The figures of the table, from one measured run. */
function figures(run: Measured) {
  const rowsPerSec = run.moved / run.backfillSeconds;
  return {
    movedOverIdeal: Number((run.moved / run.total / run.idealFraction).toFixed(3)),
    rowsPerSec: Math.round(rowsPerSec),
    ratioVsCopy: Number((rowsPerSec / (run.moved / run.copySeconds)).toFixed(3)),
    cleanupRowsPerSec: Math.round(run.moved / run.cleanupSeconds),
    rowsReadPerRowMoved: Number((run.rowsRead / run.moved).toFixed(2)),
    keysListedPerRowMoved: Number((run.keysListed / run.moved).toFixed(2)),
    verifyRowsPerSec: Math.round(run.verifyRowsChecked / run.verifySeconds),
    peakRssMb: run.peakRssMb,
    startHeapMb: run.startHeapMb,
    endHeapMb: run.endHeapMb,
  };
}

export const rebalanceBenchmark: Benchmark = {
  name: 'rebalance',
  description: ({ rows = DEFAULT_ROWS }) => `add a third PostgreSQL shard to two holding ${rows.toLocaleString('en')} users, by the key walk and by a slot column: moved share vs ideal, rows moved/s vs COPY`,
  run: ({ rows = DEFAULT_ROWS }) =>
    withLocalCluster(async () => {
      const config = await withStandbyDatabaseShard(clusterConfig, NEW_SHARD);
      const runs = { keys: await measure(config, 'key walk', rows), slots: await measure(config, 'slot column', rows) };
      const both = (cell: (run: Measured) => string | number) => [String(cell(runs.keys)), String(cell(runs.slots))];
      const rate = (count: number, time: number) => `${time.toFixed(1)} s, ${Math.round(count / time)}/s`;
      console.log(
        renderTable(
          ['measure', 'key walk', 'slot column'],
          [
            ['rows moved to the new shard', ...both((run) => `${run.moved} of ${run.total}`)],
            ['moved / ideal (1/3)', ...both((run) => figures(run).movedOverIdeal)],
            ['slots moved between the old shards', ...both((run) => run.movedBetweenUnchanged)],
            ['backfill: time, rows moved/s', ...both((run) => rate(run.moved, run.backfillSeconds))],
            ['backfill: throttled pauses (100 ms)', ...both((run) => run.throttledPauses)],
            ['backfill: whole rows read / moved', ...both((run) => figures(run).rowsReadPerRowMoved)],
            ['backfill: keys listed / row moved', ...both((run) => figures(run).keysListedPerRowMoved)],
            ['backfill: RSS at start, peak (MB)', ...both((run) => `${run.startRssMb}, ${run.peakRssMb}`)],
            ['backfill: heap after GC start, end', ...both((run) => `${run.startHeapMb}, ${run.endHeapMb}`)],
            ['verify: time, rows compared/s', ...both((run) => rate(run.verifyRowsChecked, run.verifySeconds))],
            ['verify: differences (repaired)', ...both((run) => `${run.differences} (${run.repaired})`)],
            ['COPY of the same rows: time, rows/s', ...both((run) => rate(run.moved, run.copySeconds))],
            ['rows moved/s / COPY', ...both((run) => figures(run).ratioVsCopy)],
            ['cleanup: time, rows deleted/s', ...both((run) => rate(run.moved, run.cleanupSeconds))],
          ],
        ),
      );
      console.log(JSON.stringify({ bench: 'rebalance', ...figures(runs.slots), rows, keyWalk: figures(runs.keys) }));
    }),
};
