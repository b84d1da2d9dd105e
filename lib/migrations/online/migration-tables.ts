/**
 * Where each side of an online migration lives: for a key (the migration's key columns), the
 * shard that owns its row in the source table and in the target table. The key must contain
 * both tables' shard keys, so the owner of either row follows from the key alone.
 */
import type { ResolvedConfig } from '../../config/config-types.js';
import type { ConfigIssue } from '../../errors.js';
import type { HashRing } from '../../hashing/hash-ring.js';
import type { OnlineMigration } from './online-migration.js';

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

/** What is wrong with the configured online migrations, by config path. */
export function onlineMigrationIssues(migrations: readonly OnlineMigration[], config: Pick<ResolvedConfig, 'tables' | 'globalTables'>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const names = new Set<string>();
  migrations.forEach((migration, index) => {
    const path = `onlineMigrations[${index}]`;
    if (names.has(migration.name)) issues.push({ path: `${path}.name`, message: `duplicate online migration "${migration.name}"` });
    names.add(migration.name);
    if (!Array.isArray(migration.key) || migration.key.length === 0) issues.push({ path: `${path}.key`, message: 'needs at least one key column' });
    if (typeof migration.transform !== 'function') issues.push({ path: `${path}.transform`, message: 'must be a function' });
    if (typeof migration.reverse !== 'function') issues.push({ path: `${path}.reverse`, message: 'must be a function (cutover writes back to the source)' });
    for (const side of ['source', 'target'] as const) {
      const table = migration[side];
      const sharded = config.tables.get(table);
      if (!sharded && !config.globalTables.has(table)) {
        issues.push({ path: `${path}.${side}`, message: `"${table}" is not a table in the config` });
      } else if (sharded && Array.isArray(migration.key) && !migration.key.includes(sharded.shardKey)) {
        issues.push({ path: `${path}.key`, message: `must include the shard key "${sharded.shardKey}" of ${side} table "${table}"` });
      }
    }
    const rate = migration.shadowSampleRate;
    if (rate !== undefined && !(rate >= 0 && rate <= 1)) issues.push({ path: `${path}.shadowSampleRate`, message: 'must be between 0 and 1' });
  });
  return issues;
}
