/**
 * A sharded table during a rebalance, as the online-migration machinery sees it: source and
 * target are the same table, placed by the old ring and by the new one; only rows whose owner
 * changes are copied, and each is marked on both shards before it is (move-markers.ts). Rows
 * are matched by the table's primary key, which contains the shard key, so co-located tables
 * move with their keys.
 */
import type { HashRing } from '../hashing/hash-ring.js';
import type { MigrationTables, SlotSelection } from '../migrations/online/migration-tables.js';
import { fillMissingSlots, gatherSlotStatistics } from '../dialect/slot-column.js';
import { type SlotRun, slotRuns } from '../hashing/slot-runs.js';
import type { Row } from '../config/online-migration.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { markMoves } from './move-markers.js';
import { REBALANCE_NAME } from './rebalance-record.js';

export interface MovingTableOptions {
  table: string;
  shardKey: string;
  /** The table's slot column, when it has one (`tables.<name>.slotColumn`). */
  slotColumn?: string | undefined;
  /** Primary-key columns, the shard key among them. */
  key: string[];
  from: HashRing;
  to: HashRing;
  databases: ShardDatabases;
}

const copy = (row: Row): Row => ({ ...row });

export function movingTable({ table, shardKey, slotColumn, key, from, to, databases }: MovingTableOptions): MigrationTables {
  const index = key.indexOf(shardKey);
  const ringOf = (side: 'source' | 'target') => (side === 'source' ? from : to);
  const moves = (rowKey: readonly unknown[]) => {
    const slot = from.slotOf(rowKey[index]);
    return from.ownerOfSlot(slot) !== to.ownerOfSlot(slot);
  };
  return {
    migration: { name: REBALANCE_NAME, source: table, target: table, key, transform: copy, reverse: copy },
    tableOf: () => table,
    ownerOf: (side, rowKey) => ringOf(side).shardFor(rowKey[index]),
    shardsOf: (side) => [...ringOf(side).shardNames],
    moves,
    copiedAsIs: {
      shardKey,
      ownersOf: (value) => {
        // Both rings place a key by the same slot.
        const slot = from.slotOf(value);
        return { source: from.ownerOfSlot(slot), target: to.ownerOfSlot(slot) };
      },
      ...(slotColumn ? { slots: slotSelection(table, shardKey, slotColumn, from, to, databases) } : {}),
    },
    beforeCopy: (keys) =>
      markMoves(
        databases,
        table,
        keys.filter(moves).map((rowKey) => ({ key: rowKey[index], from: from.shardFor(rowKey[index]), to: to.shardFor(rowKey[index]) })),
      ),
  };
}

/** The moving rows of a table with a slot column, as runs of the slots that change owner. */
function slotSelection(table: string, shardKey: string, column: string, from: HashRing, to: HashRing, databases: ShardDatabases): SlotSelection {
  const computed = new Map<string, Map<string, SlotRun[]>>();
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
    prepare: async (shard) => {
      const db = databases.primary(shard);
      const { family } = databases.dialectOf(shard);
      // Both rings place a key by the same slot.
      await fillMissingSlots(db, family, table, shardKey, column, (value) => from.slotOf(value));
      await gatherSlotStatistics(db, family, table, column);
    },
  };
}
