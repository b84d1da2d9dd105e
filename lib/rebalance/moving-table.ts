/**
 * A sharded table during a rebalance, as the online-migration machinery sees it: source and
 * target are the same table, placed by the old ring and by the new one; only rows whose owner
 * changes are copied, and each is marked on both shards before it is (move-markers.ts). Rows
 * are matched by the table's primary key, which contains the shard key, so co-located tables
 * move with their keys.
 */
import type { HashRing } from '../hashing/hash-ring.js';
import type { MigrationTables } from '../migrations/online/migration-tables.js';
import type { Row } from '../config/online-migration.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { markMoves } from './move-markers.js';
import { REBALANCE_NAME } from './rebalance-record.js';

export interface MovingTableOptions {
  table: string;
  shardKey: string;
  /** Primary-key columns, the shard key among them. */
  key: string[];
  from: HashRing;
  to: HashRing;
  databases: ShardDatabases;
}

const copy = (row: Row): Row => ({ ...row });

export function movingTable({ table, shardKey, key, from, to, databases }: MovingTableOptions): MigrationTables {
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
    },
    beforeCopy: (keys) =>
      markMoves(
        databases,
        table,
        keys.filter(moves).map((rowKey) => ({ key: rowKey[index], from: from.shardFor(rowKey[index]), to: to.shardFor(rowKey[index]) })),
      ),
  };
}
