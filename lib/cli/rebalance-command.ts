/**
 * shardkit rebalance plan [--add NAME]... [--remove NAME]... [--weight NAME=W]...
 * Prints what the change would move: slots per shard pair against the ideal, and rows per table
 * and shard pair counted on the data. Changes nothing.
 */
import { planRebalance, type RebalancePlan } from '../rebalance/rebalance-plan.js';
import type { TopologyChange } from '../rebalance/topology-change.js';
import { type CliIo, EXIT, UsageError, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export interface RebalanceOptions {
  config?: string;
  add: string[];
  remove: string[];
  weight: string[];
}

export async function rebalanceCommand(action: string | undefined, options: RebalanceOptions, io: CliIo): Promise<number> {
  if ((action ?? 'plan') !== 'plan') throw new UsageError(`rebalance ${action}: this version plans rebalances only (rebalance plan); moving keys online comes next`);
  const change = parseChange(options);
  return withKit(options.config, async (kit) => {
    const plan = await planRebalance(kit.topology, kit.config, change, {
      onProgress: ({ table, shard, rows }) => io.err(`counting ${table} on ${shard}: ${rows.toLocaleString('en')} rows`),
    });
    io.out(renderPlan(plan));
    return EXIT.ok;
  });
}

function parseChange(options: RebalanceOptions): TopologyChange {
  const weights: Record<string, number> = {};
  for (const entry of options.weight) {
    const match = /^([^=]+)=(.+)$/.exec(entry);
    if (!match) throw new UsageError(`--weight ${entry}: write NAME=WEIGHT, e.g. --weight shard-2=2`);
    weights[match[1]!] = Number(match[2]);
  }
  if (options.add.length + options.remove.length + options.weight.length === 0) {
    throw new UsageError('rebalance plan needs --add NAME, --remove NAME or --weight NAME=W');
  }
  return { add: options.add, remove: options.remove, weights };
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(2)}%`;
const ring = (shards: RebalancePlan['before']) => shards.map((shard) => `${shard.name} (${shard.weight})`).join(', ');

export function renderPlan(plan: RebalancePlan): string {
  const { slots } = plan;
  const lines = [
    `ring now:   ${ring(plan.before)}`,
    `ring after: ${ring(plan.after)}`,
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
