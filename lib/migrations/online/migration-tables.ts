/**
 * Where each side of an online migration lives: for a key (the migration's key columns), the
 * shard that owns its row in the source table and in the target table. The key must contain
 * both tables' shard keys, so the owner of either row follows from the key alone.
 */
import type { ResolvedConfig } from '../../config/config-types.js';
import type { HashRing } from '../../hashing/hash-ring.js';
import type { OnlineMigration } from '../../config/online-migration.js';
import type { SlotRun } from '../../hashing/slot-runs.js';

export type Side = 'source' | 'target';

export interface MigrationTables {
  migration: OnlineMigration;
  tableOf(side: Side): string;
  /** The shard owning `key`'s row on `side`. */
  ownerOf(side: Side, key: readonly unknown[]): string;
  /** The shards holding rows of `side`: every shard, or the global shard for a global table. */
  shardsOf(side: Side): string[];
  /**
   * Whether the row of `key` has to be copied at all: always for a migration between two tables;
   * for a rebalance (one table, two placements) only when its owner changes.
   */
  moves(key: readonly unknown[]): boolean;
  /** Runs before rows of `keys` are copied to the target (a rebalance marks them there first). */
  beforeCopy?(keys: readonly (readonly unknown[])[]): Promise<void>;
  /** Set where rows are copied as they are, within one table (a rebalance): verify compares server-side checksums. */
  copiedAsIs?: CopiedAsIs;
}

/** A table whose moving rows are copied unchanged, placed by its shard key on either side. */
export interface CopiedAsIs {
  shardKey: string;
  /** The shards owning the rows of shard-key value `value` on either side (one hash). */
  ownersOf(value: unknown): Record<Side, string>;
  /** Set when the table has a slot column: moving rows are found by its index, not by listing every key. */
  slots?: SlotSelection;
}

/** Moving rows by slot runs (dialect/slot-column.ts). */
export interface SlotSelection {
  column: string;
  /** The slots whose rows `shard` gives away (side 'source') or receives ('target'), by the other shard holding them. */
  runsOf(side: Side, shard: string): ReadonlyMap<string, readonly SlotRun[]>;
  /**
   * Readies `shard`'s table for reads by slot: every row without a slot (written past the kit)
   * gets its slot, and the planner the slot column's statistics.
   */
  prepare(shard: string): Promise<void>;
}

/** Where the current ring comes from: it changes when a rebalance switches the topology. */
export interface RingSource {
  readonly ring: HashRing;
}

export function migrationTables(migration: OnlineMigration, config: ResolvedConfig, rings: RingSource): MigrationTables {
  const shardKeyIndex = (side: Side): number | undefined => {
    const table = migration[side];
    const shardKey = config.tables.get(table)?.shardKey;
    return shardKey === undefined ? undefined : migration.key.indexOf(shardKey);
  };
  const indexes = { source: shardKeyIndex('source'), target: shardKeyIndex('target') };
  return {
    migration,
    tableOf: (side) => migration[side],
    ownerOf: (side, key) => {
      const index = indexes[side];
      return index === undefined ? config.globalShard : rings.ring.shardFor(key[index]);
    },
    shardsOf: (side) => (indexes[side] === undefined ? [config.globalShard] : [...rings.ring.shardNames]),
    moves: () => true,
  };
}
