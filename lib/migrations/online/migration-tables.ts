/**
 * Where each side of an online migration lives: for a key (the migration's key columns), the
 * shard that owns its row in the source table and in the target table. The key must contain
 * both tables' shard keys, so the owner of either row follows from the key alone.
 */
import type { ResolvedConfig } from '../../config/config-types.js';
import type { HashRing } from '../../hashing/hash-ring.js';
import type { OnlineMigration, Row } from '../../config/online-migration.js';
import { canonicalKey, type KeyColumn } from '../../hashing/key-canonical.js';
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
  /** Marks the rows of moving shard-key values on both their owners, before a copy that reads no row into Node (a table with a slot column: marked by its runs already, the values only checked). */
  markMoving(values: readonly unknown[]): Promise<void>;
}

/** Moving rows by slot runs (dialect/slot-column.ts). */
export interface SlotSelection {
  column: string;
  /** The slots whose rows `shard` gives away (side 'source') or receives ('target'), by the other shard holding them. */
  runsOf(side: Side, shard: string): ReadonlyMap<string, readonly SlotRun[]>;
  /** Gives every row of `shard` without a slot (written past the kit) its slot; how many key values it gave one. */
  fillMissing(shard: string): Promise<number>;
  /** Gives the rows of some shard-key values on `shard` their keys' slots where they hold another (written past the kit). */
  restamp(shard: string, values: readonly unknown[]): Promise<void>;
  /** Some shard-key values as the router hashes them, and their slots. */
  slotsOf(values: readonly unknown[]): { canonical: unknown[]; slots: number[] };
}

/** Where the current ring comes from: it changes when a rebalance switches the topology. */
export interface RingSource {
  readonly ring: HashRing;
}

/** How a key of a table is canonicalised before it is hashed (engine/key-types.ts), when known. */
export type KeyColumnOf = (table: string) => KeyColumn | undefined;

/**
 * `migration` with the slot column of each side written by the kit: a transform's row carries
 * the slot of the target's own shard key (a row spread from the source would carry the source's
 * slot, wrong where the two tables are sharded by different columns), and a reverse's the
 * source's.
 */
function withSlots(migration: OnlineMigration, config: ResolvedConfig, rings: RingSource, keyColumnOf: KeyColumnOf): OnlineMigration {
  const stamp = (table: string, map: (row: Row) => Row) => {
    const options = config.tables.get(table);
    if (!options?.slotColumn) return map;
    const { shardKey, slotColumn } = options;
    return (row: Row): Row => {
      const mapped = map(row);
      const key = mapped[shardKey];
      // A row without its key is refused where it is checked (key-sync.ts), with the migration named.
      if (key === undefined || key === null) return mapped;
      return { ...mapped, [slotColumn]: rings.ring.slotOf(canonicalKey(key, keyColumnOf(table))) };
    };
  };
  return { ...migration, transform: stamp(migration.target, migration.transform), reverse: stamp(migration.source, migration.reverse) };
}

export function migrationTables(declared: OnlineMigration, config: ResolvedConfig, rings: RingSource, keyColumnOf: KeyColumnOf): MigrationTables {
  const migration = withSlots(declared, config, rings, keyColumnOf);
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
