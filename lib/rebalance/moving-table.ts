/**
 * A sharded table during a rebalance, as the online-migration machinery sees it: source and
 * target are the same table, placed by the old ring and by the new one; only rows whose owner
 * changes are copied, and each is marked on both shards before it is (move-markers.ts: by its
 * key, or on a table with a slot column by the slot runs marked when the rebalance starts). Rows
 * are matched by the table's primary key, which contains the shard key, so co-located tables
 * move with their keys.
 */
import type { HashRing } from '../hashing/hash-ring.js';
import type { MigrationTables, SlotSelection } from '../migrations/online/migration-tables.js';
import { fillMissingSlots, restampSlots } from '../dialect/slot-column.js';
import type { KeyTypes } from '../engine/key-types.js';
import { canonicalKey } from '../hashing/key-canonical.js';
import { type SlotRun, slotRuns } from '../hashing/slot-runs.js';
import type { Row } from '../config/online-migration.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { type KeyMove, markerText, markMoves } from './move-markers.js';
import { REBALANCE_NAME } from './rebalance-record.js';
import { withField } from '../util/with-field.js';

export interface MovingTableOptions {
  table: string;
  shardKey: string;
  /** The table's slot column, when it has one (`tables.<name>.slotColumn`). */
  slotColumn?: string | undefined;
  /** How the key column compares values: a key is placed by its canonical form, as the router places it. */
  keyTypes: Pick<KeyTypes, 'of' | 'learn'>;
  /** Primary-key columns, the shard key among them. */
  key: string[];
  from: HashRing;
  to: HashRing;
  databases: ShardDatabases;
}


export function movingTable({ table, shardKey, slotColumn, keyTypes, key, from, to, databases }: MovingTableOptions): MigrationTables {
  const index = key.indexOf(shardKey);
  const ringOf = (side: 'source' | 'target') => (side === 'source' ? from : to);
  const canonical = (value: unknown) => canonicalKey(value, keyTypes.of(table));
  // Both rings place a key by the same slot.
  const slotOf = (value: unknown) => from.slotOf(canonical(value));
  const moves = (rowKey: readonly unknown[]) => {
    const slot = slotOf(rowKey[index]);
    return from.ownerOfSlot(slot) !== to.ownerOfSlot(slot);
  };
  const slots = slotColumn ? slotSelection({ table, shardKey, column: slotColumn, keyTypes, canonical, from, to, databases }) : undefined;
  /**
   * Marks the moving ones of some shard-key values on both their owners. A table with a slot
   * column is marked by the runs written when the move started, which hold every copy (a copy
   * carries its key's slot): its values are only checked to be of a type a rebalance moves.
   */
  const markMoving = (values: readonly unknown[]) => {
    if (slots) {
      for (const value of values) markerText(value);
      return Promise.resolve();
    }
    const marks: KeyMove[] = [];
    for (const value of values) {
      const slot = slotOf(value);
      const [source, target] = [from.ownerOfSlot(slot), to.ownerOfSlot(slot)];
      if (source !== target) marks.push({ key: value, from: source, to: target });
    }
    return markMoves(databases, table, marks);
  };
  /**
   * Before keys of a table with a slot column are copied one by one (dual writes, repairs, a
   * walk of keys), their rows on both owners get their keys' slots where a write past the kit
   * (or a key changed by an update, which the trigger leaves without one) left another or none:
   * every copy then lies in the runs that mark it and that cleanup and abort delete by.
   */
  const restampOwners = async (values: readonly unknown[]) => {
    const byOwner = new Map<string, unknown[]>();
    for (const value of values) {
      markerText(value);
      const slot = slotOf(value);
      const owners = [from.ownerOfSlot(slot), to.ownerOfSlot(slot)];
      if (owners[0] === owners[1]) continue;
      for (const owner of owners) {
        const some = byOwner.get(owner) ?? [];
        some.push(value);
        byOwner.set(owner, some);
      }
    }
    await Promise.all([...byOwner].map(([owner, some]) => slots!.restamp(owner, some)));
  };
  // A row arrives as it is, with the slot of its key where the table has a slot column (one found wrong by a walk of keys is right in its copy).
  const copy = slotColumn ? (row: Row): Row => withField(row, slotColumn, slotOf(row[shardKey])) : (row: Row): Row => ({ ...row });
  return {
    migration: { name: REBALANCE_NAME, source: table, target: table, key, transform: copy, reverse: copy },
    tableOf: () => table,
    ownerOf: (side, rowKey) => ringOf(side).ownerOfSlot(slotOf(rowKey[index])),
    shardsOf: (side) => [...ringOf(side).shardNames],
    moves,
    copiedAsIs: {
      shardKey,
      ownersOf: (value) => {
        const slot = slotOf(value);
        return { source: from.ownerOfSlot(slot), target: to.ownerOfSlot(slot) };
      },
      markMoving,
      ...(slots ? { slots } : {}),
    },
    // Once per shard-key value: the rows of a page often share one (a user's orders), and each
    // repeat would rewrite all of that value's rows again.
    beforeCopy: (keys) => (slots ? restampOwners : markMoving)([...new Set(keys.map((rowKey) => rowKey[index]))]),
  };
}

interface SlotSelectionOptions {
  table: string;
  shardKey: string;
  column: string;
  keyTypes: Pick<KeyTypes, 'learn'>;
  canonical: (value: unknown) => unknown;
  from: HashRing;
  to: HashRing;
  databases: ShardDatabases;
}

/** How long finding the key column's type may take before a fill of missing slots. */
const KEY_TYPE_LOOKUP_MS = 5000;

/** The moving rows of a table with a slot column, as runs of the slots that change owner. */
function slotSelection({ table, shardKey, column, keyTypes, canonical, from, to, databases }: SlotSelectionOptions): SlotSelection {
  const slotsOf = (values: readonly unknown[]) => {
    const keys = values.map(canonical);
    return { canonical: keys, slots: keys.map((key) => from.slotOf(key)) };
  };
  const computed = new Map<string, Map<string, SlotRun[]>>();
  // One fill per shard at a time: verify's passes fill the shards they compare with, together.
  const filling = new Map<string, Promise<number>>();
  const fill = async (shard: string) => {
    await keyTypes.learn(table, performance.now() + KEY_TYPE_LOOKUP_MS);
    return fillMissingSlots(databases.primary(shard), databases.dialectOf(shard).family, table, shardKey, column, canonical, (value) => from.slotOf(value));
  };
  return {
    column,
    runsOf: (side, shard) => {
      const id = `${side}\u0000${shard}`;
      let byOther = computed.get(id);
      if (!byOther) {
        // The source side gives away what the old ring placed on it and the new one elsewhere; the target side receives the reverse.
        const [here, there] = side === 'source' ? [from, to] : [to, from];
        byOther = new Map();
        for (const other of there.shardNames) {
          if (other === shard) continue;
          const runs = slotRuns((slot) => here.ownerOfSlot(slot) === shard && there.ownerOfSlot(slot) === other);
          if (runs.length > 0) byOther.set(other, runs);
        }
        computed.set(id, byOther);
      }
      return byOther;
    },
    restamp: (shard, values) => restampSlots(databases.primary(shard), databases.dialectOf(shard).family, table, shardKey, column, { values, ...slotsOf(values) }),
    slotsOf,
    fillMissing: (shard) => {
      let running = filling.get(shard);
      if (!running) {
        running = fill(shard).finally(() => filling.delete(shard));
        filling.set(shard, running);
      }
      return running;
    },
  };
}
