/** Topologies for rebalance tests: a cluster target of targets.ts plus a third shard on standby. */
import { addSlotColumn, createShardKit, SchemaMigrator, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { ACKS_TABLE, MIGRATIONS_TABLE, MISMATCHES_TABLE } from '../../lib/migrations/online/control-store.js';
import { OUTBOX_TABLE } from '../../lib/migrations/online/sync-outbox.js';
import { MARKERS_TABLE, RUN_MARKERS_TABLE } from '../../lib/rebalance/move-markers.js';
import { withStandbyDatabaseShard } from '../../scripts/local-cluster.js';
import type { Target } from './targets.js';

/** A server target (PostgreSQL or MariaDB cluster) with a standby shard named `third`. */
export function withStandbyShard(target: Target): Promise<ShardKitConfig> {
  return withStandbyDatabaseShard(target.config, 'third');
}

/** Empty tables on every shard (standby too) and no migration or rebalance state. */
export async function resetForRebalance(config: ShardKitConfig): Promise<void> {
  const kit = await createShardKit(config);
  try {
    const migrator = new SchemaMigrator(kit);
    await migrator.rollback({ all: true });
    await migrator.latest();
    await Promise.all(kit.shardNames.flatMap((shard) => [MARKERS_TABLE, RUN_MARKERS_TABLE, OUTBOX_TABLE].map((table) => kit.forShard(shard).schema.dropTableIfExists(table))));
    const control = kit.forShard(kit.config.migrations.controlShard);
    for (const table of [MIGRATIONS_TABLE, ACKS_TABLE, MISMATCHES_TABLE]) await control.schema.dropTableIfExists(table);
  } finally {
    await kit.close();
  }
}

/** Every row of `table` on every shard, read directly, with the shard it was found on. */
export async function rowsByShard(kit: ShardKit, table: string): Promise<{ shard: string; row: Record<string, unknown> }[]> {
  const perShard = await Promise.all(kit.shardNames.map(async (shard) => (await kit.forShard(shard)(table).select()).map((row: Record<string, unknown>) => ({ shard, row }))));
  return perShard.flat();
}

/** A slot column on users and orders of every shard (standby too), as a schema migration would add it. */
export async function addSlotColumns(config: ShardKitConfig, column: string): Promise<void> {
  const kit = await createShardKit(config);
  try {
    for (const shard of kit.shardNames) {
      await addSlotColumn(kit.forShard(shard), 'users', { shardKey: 'id', column });
      await addSlotColumn(kit.forShard(shard), 'orders', { shardKey: 'user_id', column });
    }
  } finally {
    await kit.close();
  }
}
