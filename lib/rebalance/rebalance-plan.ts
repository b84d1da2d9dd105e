/**
 * `shardkit rebalance plan`: what a topology change would move, changing nothing. The slot plan
 * comes from the two rings alone; the row counts from reading every shard's keys.
 */
import type { ResolvedConfig } from '../config/config-types.js';
import { HashRing, type RingShard } from '../hashing/hash-ring.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { type CountOptions, countRowMoves, type TableMoves } from './row-moves.js';
import { planSlotMoves, type SlotMovePlan } from './slot-moves.js';
import { applyTopologyChange, type TopologyChange } from './topology-change.js';

export interface RebalancePlan {
  before: RingShard[];
  after: RingShard[];
  slots: SlotMovePlan;
  tables: TableMoves[];
}

/** `before`: the ring's shards now (the config's, or those of the last rebalance). */
export async function planRebalance(
  databases: ShardDatabases,
  config: ResolvedConfig,
  before: RingShard[],
  change: TopologyChange,
  options: CountOptions = {},
): Promise<RebalancePlan> {
  const after = applyTopologyChange(
    before,
    change,
    config.shards.map((shard) => shard.name),
  );
  const slots = planSlotMoves(databases.ring, before, await HashRing.create(after), after);
  const tables = await countRowMoves(databases, config, databases.ring, slots, options);
  return { before, after, slots, tables };
}
