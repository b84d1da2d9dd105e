/**
 * Which hash slots change owner between two rings, and how that compares with the least any
 * placement could move. Pure: no database, no keys, only the two slot tables.
 *
 * A key moves exactly when its slot does, so the slot plan is the key plan for every sharded
 * table at once; co-located tables (orders sharded by user_id beside users by id) move together.
 * The ideal is the total variation between the two weight distributions:
 * sum over shards of max(0, new share - old share); adding one shard to N equal ones gives 1/(N+1).
 */
import { SLOT_COUNT } from '../hashing/key-hasher.js';
import type { HashRing, RingShard } from '../hashing/hash-ring.js';
import { type SlotRun, slotRuns } from '../hashing/slot-runs.js';

export interface SlotFlow {
  from: string;
  to: string;
  slots: number;
}

export interface SlotMovePlan {
  /** Slot flows between shards, largest first. */
  flows: SlotFlow[];
  movedSlots: number;
  movedFraction: number;
  idealFraction: number;
  /** Slots moved between two shards that exist before and after with unchanged weights (should be 0). */
  movedBetweenUnchanged: number;
  /** The new owner of a slot that moves, or undefined when it stays. */
  destinationOf(slot: number): string | undefined;
}

export function planSlotMoves(before: HashRing, beforeShards: readonly RingShard[], after: HashRing, afterShards: readonly RingShard[]): SlotMovePlan {
  const destinations = new Map<number, string>();
  const flows = new Map<string, SlotFlow>();
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const from = before.ownerOfSlot(slot);
    const to = after.ownerOfSlot(slot);
    if (from === to) continue;
    destinations.set(slot, to);
    const id = `${from}\u0000${to}`;
    const flow = flows.get(id) ?? { from, to, slots: 0 };
    flow.slots++;
    flows.set(id, flow);
  }
  const weightBefore = new Map(beforeShards.map((shard) => [shard.name, shard.weight]));
  const weightAfter = new Map(afterShards.map((shard) => [shard.name, shard.weight]));
  const unchanged = (name: string) => weightBefore.has(name) && weightBefore.get(name) === weightAfter.get(name);
  const ordered = [...flows.values()].sort((a, b) => b.slots - a.slots || (a.from + a.to < b.from + b.to ? -1 : 1));
  return {
    flows: ordered,
    movedSlots: destinations.size,
    movedFraction: destinations.size / SLOT_COUNT,
    idealFraction: idealMovedFraction(beforeShards, afterShards),
    movedBetweenUnchanged: ordered.filter((flow) => unchanged(flow.from) && unchanged(flow.to)).reduce((sum, flow) => sum + flow.slots, 0),
    destinationOf: (slot) => destinations.get(slot),
  };
}

/** The least share of keys any placement must move to go from one weighting to the other. */
export function idealMovedFraction(before: readonly RingShard[], after: readonly RingShard[]): number {
  const share = (shards: readonly RingShard[]) => {
    const total = shards.reduce((sum, shard) => sum + shard.weight, 0);
    return new Map(shards.map((shard) => [shard.name, shard.weight / total]));
  };
  const [old, next] = [share(before), share(after)];
  let gained = 0;
  for (const [name, fraction] of next) gained += Math.max(0, fraction - (old.get(name) ?? 0));
  return gained;
}

/** The slot runs that leave one shard and those that enter it. */
export interface ShardRuns {
  shard: string;
  out: SlotRun[];
  in: SlotRun[];
}

/** For each of `shards`, the runs of slots it gives away and those it receives between the two rings. */
export function shardRunsOf(before: HashRing, after: HashRing, shards: readonly string[]): ShardRuns[] {
  return shards.map((shard) => ({
    shard,
    out: slotRuns((slot) => before.ownerOfSlot(slot) === shard && after.ownerOfSlot(slot) !== shard),
    in: slotRuns((slot) => after.ownerOfSlot(slot) === shard && before.ownerOfSlot(slot) !== shard),
  }));
}
