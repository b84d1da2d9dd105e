/**
 * The second copies of a table with a slot column, removed at the end of a rebalance without
 * markers of keys: on each shard of one side, the keys in the slot runs it gives away (cleanup,
 * on the old owners) or receives (abort, on the new owners) are listed from its (slot, key)
 * index, a group of runs at a time, and the rows of those whose own hash moves them are deleted
 * there. A row listed by a slot written wrong past the kit, whose key does not move, stays.
 *
 * Every second copy lies in those runs: a copy carries its key's slot, and an old owner's row
 * gets its key's slot before the key is copied by key (moving-table.ts). Shards delete at once,
 * each a batch at a time; a crash leaves the run markers in place and a repeat lists what is left.
 */
import type { ShardDatabases } from '../access/shard-databases.js';
import { keysInSlots } from '../dialect/slot-column.js';
import { countKeysToWalk } from '../migrations/online/slot-key-count.js';
import { whereValueIn } from '../dialect/value-list.js';
import { groupRuns, slotsIn } from '../hashing/slot-runs.js';
import type { MigrationTables } from '../migrations/online/migration-tables.js';
import type { MarkerDirection } from './move-markers.js';

export interface SlotCopyRemoval {
  /** 'out': cleanup (the old owners' rows go); 'in': abort (the new owners' copies go). */
  direction: MarkerDirection;
  /** Shard-key values a batch lists and deletes. */
  batchSize: number;
  /** Shard-key values deleted so far on `shard`, of `total` in its runs. */
  onProgress?: (shard: string, deleted: number, total: number) => void;
}

export async function removeSlotCopies(databases: ShardDatabases, tables: MigrationTables, removal: SlotCopyRemoval): Promise<void> {
  const copy = tables.copiedAsIs!;
  const slots = copy.slots!;
  const side = removal.direction === 'out' ? 'source' : 'target';
  const table = tables.tableOf(side);
  const removeOn = async (shard: string) => {
    const runs = [...slots.runsOf(side, shard).values()].flat().sort((a, b) => a.first - b.first);
    if (runs.length === 0) return;
    const db = databases.primary(shard);
    const { family } = databases.dialectOf(shard);
    // Rows left without a slot (a key changed by an update) get theirs first, or the index would not list them.
    await slots.fillMissing(shard);
    const counted = await countKeysToWalk(db, family, { table, shardKey: copy.shardKey, column: slots.column, runs });
    // An estimate of none may be wrong: only a count of none skips the listing.
    if (counted.exact && counted.keys === 0) return;
    const total = counted.keys;
    removal.onProgress?.(shard, 0, total);
    // Keys hash uniformly over the slots: a group of runs holds about batchSize keys.
    const slotsPerKey = slotsIn(runs) / Math.max(1, total);
    let deleted = 0;
    for (const group of groupRuns(runs, removal.batchSize * slotsPerKey, Number.POSITIVE_INFINITY)) {
      const listed = await keysInSlots(db, family, table, copy.shardKey, slots.column, group);
      const copies = listed.filter((value) => {
        const owners = copy.ownersOf(value);
        return owners[side] === shard && owners.source !== owners.target;
      });
      if (copies.length > 0) await whereValueIn(db(table), family, copy.shardKey, copies).del();
      deleted += copies.length;
      removal.onProgress?.(shard, deleted, total);
    }
  };
  // All shards settle before a failure is reported, so that none still deletes after the step ended.
  const outcomes = await Promise.allSettled(tables.shardsOf(side).map(removeOn));
  const failed = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
}
