/**
 * shardkit rebalance plan | run | status | rollback | cleanup | abort
 *
 * plan prints what a change (--add / --remove / --weight) would move and changes nothing. run
 * starts the change (or resumes the one in progress) and drives it through backfill, verify,
 * shadow_read and cutover (migrations/online/drive.ts), stopping before cleanup unless --yes;
 * a rerun resumes from the checkpoints. rollback moves one phase back, and back at pending
 * removes the copies made so far (abort).
 */
import type { Command } from 'commander';
import { drive } from '../migrations/online/drive.js';
import type { RebalancePlan } from '../rebalance/rebalance-plan.js';
import type { CleanupProgress, RebalanceRunner, RebalanceStatus } from '../rebalance/rebalance-runner.js';
import type { TopologyChange } from '../rebalance/topology-change.js';
import { type BackfillCliOptions, backfillOptions, verifyOptions } from './backfill-progress.js';
import { type CliIo, collect, EXIT, type GlobalOptions, positiveNumber, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { statusTables } from './online-command.js';
import { Progress, ProgressGroup } from './progress.js';
import { renderTable } from './render-table.js';

interface RebalanceOptions extends GlobalOptions, BackfillCliOptions {
  add?: string[];
  remove?: string[];
  weight?: string[];
  yes?: boolean;
  wait?: number;
  walkKeys?: boolean;
}

export function registerRebalance(program: Command, io: CliIo, run: Run): void {
  const rebalance = program.command('rebalance').description('add, remove or reweight shards online, moving exactly the keys that change owner');
  const change = (command: Command) =>
    command
      .option('--add <shard>', 'a standby shard of the config that joins the ring (repeatable)', collect)
      .option('--remove <shard>', 'a shard that leaves the ring (repeatable)', collect)
      .option('--weight <shard=weight>', 'a new weight (repeatable)', collect);
  const moving = (command: Command) =>
    command
      .option('--max-rate <rows/s>', 'rows per second over every table and shard together', positiveNumber('max-rate'))
      .option('--max-lag <ms>', 'pause while a replica lags more than this (default 1000)', positiveNumber('max-lag'))
      .option('--batch <rows>', 'shard-key values per batch (default 10000)', positiveNumber('batch'))
      .option('--wait <ms>', 'how long a phase change waits for every instance (default 10000)', positiveNumber('wait'));
  const step = (name: string, description: string, work: (runner: RebalanceRunner, options: RebalanceOptions) => Promise<void>) =>
    rebalance
      .command(name)
      .description(description)
      .action(
        run(async (_options: unknown, command: Command) => {
          const options = command.optsWithGlobals<RebalanceOptions>();
          return withKit(options.config, async (kit) => {
            const runner = kit.rebalance();
            await work(runner, options);
            const status = await runner.status();
            io.out(options.json ? JSON.stringify(status, null, 2) : renderStatus(status, io.columns));
            return EXIT.ok;
          });
        }),
      );

  change(rebalance.command('plan').description('what the change would move (slots, rows per table and shard pair); changes nothing')).action(
    run(async (_options: unknown, command: Command) => {
      const options = command.optsWithGlobals<RebalanceOptions>();
      const wanted = parseChange(options);
      if (!wanted) throw new UsageError('rebalance plan needs --add NAME, --remove NAME or --weight NAME=W');
      return withKit(options.config, async (kit) => {
        const plan = await kit.rebalance().plan(wanted, { onProgress: ({ table, shard, rows }) => options.json || io.err(`counting ${table} on ${shard}: ${rows.toLocaleString('en')} rows`) });
        io.out(options.json ? JSON.stringify(plan, null, 2) : renderPlan(plan, io.columns));
        return EXIT.ok;
      });
    }),
  );
  moving(
    change(
      step('run', 'start the change (or resume it) and move the keys online up to cutover; cleanup too with --yes', async (runner, options) => {
        await runToCutover(runner, options, io);
      }),
    ),
  )
    .option('--yes', 'go on through cleanup: delete the moved rows from their old owners')
    .option('--walk-keys', 'verify by listing every shard-key value, also of tables with a slot column (slower; finds a row whose slot is wrong)');
  moving(
    step('rollback', 'one phase back; back at pending, remove the copies made so far', async (runner, options) => {
      const waitForAcksMs = options.wait ?? 10_000;
      const record = await runner.phases.rollback({ waitForAcksMs });
      if (record.phase === 'pending') await removeWithProgress(runner, 'abort', 'removing copies', waitForAcksMs, io);
    }),
  );
  moving(
    step('cleanup', 'after cutover: delete the moved rows from their old owners (needs --yes)', async (runner, options) => {
      if (!options.yes) throw new UsageError('rebalance cleanup deletes the moved rows from their old owners: add --yes');
      await finish(runner, options.wait ?? 10_000, io);
    }),
  ).option('--yes', 'really delete them');
  moving(step('abort', 'at pending after a rollback: remove the copies made on the new owners', async (runner, options) => removeWithProgress(runner, 'abort', 'removing copies', options.wait ?? 10_000, io)));
  step('status', 'the rebalance in progress (or the last one): rings, phase, gates, checkpoints', async () => {});
}

async function runToCutover(runner: RebalanceRunner, options: RebalanceOptions, io: CliIo): Promise<void> {
  const waitForAcksMs = options.wait ?? 10_000;
  const wanted = parseChange(options);
  const status = await runner.status();
  const inProgress = !status.cleaned && status.phase !== 'pending';
  if (inProgress && wanted) throw new UsageError(`a rebalance is in progress (phase ${status.phase}): run without --add/--remove/--weight to resume it, or roll it back`);
  if (!inProgress) {
    if (!wanted) throw new UsageError('rebalance run needs --add NAME, --remove NAME or --weight NAME=W (or a rebalance in progress to resume)');
    const plan = await runner.start(wanted, { waitForAcksMs });
    if (!options.json) io.out(renderPlan(plan, io.columns));
  }
  const { bar, options: backfill } = backfillOptions('moving rows', options, io.progress, io.columns);
  try {
    await drive(runner.phases, {
      until: 'cutover',
      backfill,
      verify: verifyOptions(io.err, options.walkKeys === true),
      waitForAcksMs,
      onPhase: (phase) => io.err(`phase ${phase}`),
    });
  } finally {
    bar.stop();
  }
  if (options.yes) await finish(runner, waitForAcksMs, io);
  else io.err('stopped at cutover: the new topology serves every key, the old owners still hold their rows; rebalance cleanup --yes deletes them');
}

async function finish(runner: RebalanceRunner, waitForAcksMs: number, io: CliIo): Promise<void> {
  if ((await runner.status()).phase === 'cutover') await runner.phases.advance({ waitForAcksMs });
  await removeWithProgress(runner, 'cleanup', 'deleting moved rows', waitForAcksMs, io);
}

/** cleanup or abort, with a bar per table and shard (shards run at once), each with its own total, rate and ETA. */
async function removeWithProgress(runner: RebalanceRunner, step: 'cleanup' | 'abort', label: string, waitForAcksMs: number, io: CliIo): Promise<void> {
  const group = new ProgressGroup(io.progress);
  const bars = new Map<string, Progress>();
  const onProgress = ({ table, shard, deleted, total }: CleanupProgress) => {
    const id = `${table} on ${shard}`;
    let bar = bars.get(id);
    if (!bar) {
      bar = new Progress(`${label}: ${id}`, { unit: 'keys', group, width: io.columns });
      bars.set(id, bar);
    }
    bar.update(deleted, total, { done: deleted >= total });
    if (deleted >= total) bar.stop();
  };
  try {
    await runner[step]({ waitForAcksMs, onProgress });
  } finally {
    for (const bar of bars.values()) bar.stop();
    group.stop();
  }
}

function parseChange(options: RebalanceOptions): TopologyChange | undefined {
  const add = options.add ?? [];
  const remove = options.remove ?? [];
  const weight = options.weight ?? [];
  if (add.length + remove.length + weight.length === 0) return undefined;
  const weights: Record<string, number> = {};
  for (const entry of weight) {
    const match = /^([^=]+)=(.+)$/.exec(entry);
    if (!match) throw new UsageError(`--weight ${entry}: write NAME=WEIGHT, e.g. --weight shard-2=2`);
    weights[match[1]!] = Number(match[2]);
  }
  return { add, remove, weights };
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;
const ringText = (shards: RebalancePlan['before']) => shards.map((shard) => `${shard.name} (${shard.weight})`).join(', ');

export function renderStatus(status: RebalanceStatus, width: number): string {
  const rings = status.from && status.to ? `ring from: ${ringText(status.from)}\nring to:   ${ringText(status.to)}\nsecond copies removed: ${status.cleaned ? 'yes' : 'no'}\n\n` : '';
  return `${rings}${statusTables(status, width)}`;
}

export function renderPlan(plan: RebalancePlan, width: number): string {
  const { slots } = plan;
  const lines = [
    `ring now:   ${ringText(plan.before)}`,
    `ring after: ${ringText(plan.after)}`,
    '',
    renderTable(
      ['slots moving', 'share', 'ideal', 'moved/ideal', { header: 'between unchanged', optional: true }],
      [[slots.movedSlots, percent(slots.movedFraction), percent(slots.idealFraction), (slots.movedFraction / slots.idealFraction).toFixed(3), slots.movedBetweenUnchanged]],
      width,
    ),
    '',
    renderTable(['from', 'to', 'slots'], slots.flows.map((flow) => [flow.from, flow.to, flow.slots]), width),
    '',
    renderTable(
      ['table', 'rows', 'rows moving', 'share', { header: 'misplaced now', optional: true }],
      plan.tables.map((table) => [table.table, table.rows, table.movingRows, table.rows > 0 ? percent(table.movingRows / table.rows) : '-', table.misplacedRows]),
      width,
    ),
  ];
  const flows = plan.tables.flatMap((table) => table.flows.map((flow) => [table.table, flow.from, flow.to, flow.rows]));
  if (flows.length > 0) lines.push('', renderTable(['table', 'from', 'to', 'rows'], flows, width));
  return lines.join('\n');
}
