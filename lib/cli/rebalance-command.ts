/**
 * shardkit rebalance plan | run | status | rollback | cleanup | abort
 *   [--add NAME]... [--remove NAME]... [--weight NAME=W]... [--yes]
 *   [--max-rate ROWS_PER_S] [--max-lag MS] [--batch N] [--wait MS]
 *
 * plan (the default) prints what the change would move and changes nothing. run starts the
 * change (or resumes the one in progress) and drives it through backfill, verify, shadow_read
 * and cutover, stopping before cleanup unless --yes; a rerun resumes from the checkpoints.
 * rollback moves one phase back, and back at pending removes the copies made so far (abort).
 */
import type { RebalancePlan } from '../rebalance/rebalance-plan.js';
import type { CleanupProgress, RebalanceRunner, RebalanceStatus } from '../rebalance/rebalance-runner.js';
import type { TopologyChange } from '../rebalance/topology-change.js';
import { type BackfillCliOptions, backfillWithProgress } from './backfill-progress.js';
import { type CliIo, EXIT, UsageError, withKit } from './cli-context.js';
import { statusTables } from './online-command.js';
import { ProgressBar } from './progress-bar.js';
import { renderTable } from './render-table.js';

export interface RebalanceOptions extends BackfillCliOptions {
  config?: string;
  add: string[];
  remove: string[];
  weight: string[];
  yes: boolean;
  waitMs?: number;
}

const ACTIONS = ['plan', 'run', 'status', 'rollback', 'cleanup', 'abort'];

export async function rebalanceCommand(action: string | undefined, options: RebalanceOptions, io: CliIo): Promise<number> {
  const verb = action ?? 'plan';
  if (!ACTIONS.includes(verb)) throw new UsageError(`rebalance needs one of: ${ACTIONS.join(', ')}`);
  const change = parseChange(options);
  if (verb === 'plan' && !change) throw new UsageError('rebalance plan needs --add NAME, --remove NAME or --weight NAME=W');
  return withKit(options.config, async (kit) => {
    const runner = kit.rebalance();
    const waitForAcksMs = options.waitMs ?? 10_000;
    switch (verb) {
      case 'plan':
        io.out(renderPlan(await runner.plan(change!, { onProgress: ({ table, shard, rows }) => io.err(`counting ${table} on ${shard}: ${rows.toLocaleString('en')} rows`) })));
        return EXIT.ok;
      case 'run':
        await run(runner, change, options, io);
        break;
      case 'rollback': {
        const record = await runner.phases.rollback({ waitForAcksMs });
        if (record.phase === 'pending') await runner.abort({ waitForAcksMs, onProgress: cleanupProgress('removing copies') });
        break;
      }
      case 'cleanup':
        if (!options.yes) throw new UsageError('rebalance cleanup deletes the moved rows from their old owners: add --yes');
        await finish(runner, waitForAcksMs);
        break;
      case 'abort':
        await runner.abort({ waitForAcksMs, onProgress: cleanupProgress('removing copies') });
        break;
    }
    io.out(renderStatus(await runner.status()));
    return EXIT.ok;
  });
}

/** Starts the change unless one is in progress, then drives it phase by phase up to cutover (cleanup with --yes). */
async function run(runner: RebalanceRunner, change: TopologyChange | undefined, options: RebalanceOptions, io: CliIo): Promise<void> {
  const waitForAcksMs = options.waitMs ?? 10_000;
  let status = await runner.status();
  const inProgress = !status.cleaned && status.phase !== 'pending';
  if (inProgress && change) throw new UsageError(`a rebalance is in progress (phase ${status.phase}): run without --add/--remove/--weight to resume it, or roll it back`);
  if (!inProgress) {
    if (!change) throw new UsageError('rebalance run needs --add NAME, --remove NAME or --weight NAME=W (or a rebalance in progress to resume)');
    io.out(renderPlan(await runner.start(change)));
    status = await runner.status();
  }
  for (;;) {
    io.err(`phase ${status.phase}`);
    switch (status.phase) {
      case 'pending':
        if (status.cleaned) return;
        break;
      case 'backfill':
        await backfillWithProgress(runner.phases, 'moving rows (reading every row of the old owners)', options);
        break;
      case 'verify': {
        const report = await runner.phases.verify();
        io.err(`verify: ${report.rowsChecked} moving rows checked, ${report.differences} differences, ${report.repaired} repaired`);
        break;
      }
      case 'cutover':
        if (!options.yes) {
          io.err('stopped at cutover: the new topology serves every key, the old owners still hold their rows; rebalance cleanup --yes deletes them');
          return;
        }
        await finish(runner, waitForAcksMs);
        return;
      case 'cleanup':
        if (options.yes) await finish(runner, waitForAcksMs);
        return;
    }
    await runner.phases.advance({ waitForAcksMs });
    status = await runner.status();
  }
}

async function finish(runner: RebalanceRunner, waitForAcksMs: number): Promise<void> {
  if ((await runner.status()).phase === 'cutover') await runner.phases.advance({ waitForAcksMs });
  await runner.cleanup({ waitForAcksMs, onProgress: cleanupProgress('deleting moved rows from their old owners') });
}

/** One bar per table and shard, each with its own total, rate and ETA. */
function cleanupProgress(label: string) {
  const bars = new Map<string, ProgressBar>();
  return ({ table, shard, deleted, total }: CleanupProgress) => {
    const id = `${table} on ${shard}`;
    let bar = bars.get(id);
    if (!bar) {
      bar = new ProgressBar(`${label}: ${id}`, process.stderr, 'keys');
      bars.set(id, bar);
    }
    bar.update(deleted, total);
    if (deleted >= total) bar.finish();
  };
}

function parseChange(options: RebalanceOptions): TopologyChange | undefined {
  if (options.add.length + options.remove.length + options.weight.length === 0) return undefined;
  const weights: Record<string, number> = {};
  for (const entry of options.weight) {
    const match = /^([^=]+)=(.+)$/.exec(entry);
    if (!match) throw new UsageError(`--weight ${entry}: write NAME=WEIGHT, e.g. --weight shard-2=2`);
    weights[match[1]!] = Number(match[2]);
  }
  return { add: options.add, remove: options.remove, weights };
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;
const ringText = (shards: RebalancePlan['before']) => shards.map((shard) => `${shard.name} (${shard.weight})`).join(', ');

export function renderStatus(status: RebalanceStatus): string {
  const rings = status.from && status.to ? `ring from: ${ringText(status.from)}\nring to:   ${ringText(status.to)}\nsecond copies removed: ${status.cleaned ? 'yes' : 'no'}\n\n` : '';
  return `${rings}${statusTables(status)}`;
}

export function renderPlan(plan: RebalancePlan): string {
  const { slots } = plan;
  const lines = [
    `ring now:   ${ringText(plan.before)}`,
    `ring after: ${ringText(plan.after)}`,
    '',
    renderTable(
      ['slots moving', 'share', 'ideal share', 'moved / ideal', 'moved between unchanged shards'],
      [[slots.movedSlots, percent(slots.movedFraction), percent(slots.idealFraction), (slots.movedFraction / slots.idealFraction).toFixed(3), slots.movedBetweenUnchanged]],
    ),
    '',
    renderTable(['from', 'to', 'slots'], slots.flows.map((flow) => [flow.from, flow.to, flow.slots])),
    '',
    renderTable(
      ['table', 'rows', 'rows moving', 'share', 'misplaced now'],
      plan.tables.map((table) => [table.table, table.rows, table.movingRows, table.rows > 0 ? percent(table.movingRows / table.rows) : '-', table.misplacedRows]),
    ),
  ];
  const flows = plan.tables.flatMap((table) => table.flows.map((flow) => [table.table, flow.from, flow.to, flow.rows]));
  if (flows.length > 0) lines.push('', renderTable(['table', 'from', 'to', 'rows'], flows));
  return lines.join('\n');
}
