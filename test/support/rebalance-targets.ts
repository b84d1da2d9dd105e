/**
 * Topologies for rebalance tests: each target of targets.ts plus a third shard on standby. On
 * the local cluster the third shard is one more database on the first server (PostgreSQL:
 * created with the cluster's local admin account; MariaDB: the app user may create shardkit_*).
 */
import knexModule from 'knex';
import { createShardKit, SchemaMigrator, type ShardConfig, type ShardKit, type ShardKitConfig } from '../../lib/index.js';
import { ACKS_TABLE, MIGRATIONS_TABLE, MISMATCHES_TABLE } from '../../lib/migrations/online/control-store.js';
import { MARKERS_TABLE } from '../../lib/rebalance/move-markers.js';
import type { Target } from './targets.js';

const EXTRA_DATABASE = 'shardkit_3';

function withDatabase(shard: ShardConfig, name: string, database: string): ShardConfig {
  const node = (config: ShardConfig['primary']) => ({ ...config, connection: { ...(config.connection as object), database } });
  return { name, standby: true, primary: node(shard.primary), replicas: (shard.replicas ?? []).map(node) };
}

/** A server target (PostgreSQL or MariaDB cluster) with a standby shard named `third`. */
export async function withStandbyShard(target: Target): Promise<ShardKitConfig> {
  const [first] = target.config.shards as [ShardConfig];
  const { host, port } = first.primary.connection as { host: string; port: number };
  if (first.primary.dialect === 'postgres') {
    const admin = knexModule.knex({ client: 'pg', connection: { host, port, user: 'postgres', database: 'postgres' } });
    try {
      const exists = await admin.raw('select 1 from pg_database where datname = ?', [EXTRA_DATABASE]);
      if (exists.rows.length === 0) await admin.raw('create database ?? owner shardkit', [EXTRA_DATABASE]);
    } finally {
      await admin.destroy();
    }
  } else {
    const app = knexModule.knex({ client: 'mysql2', connection: { ...(first.primary.connection as object) } });
    try {
      await app.raw('create database if not exists ??', [EXTRA_DATABASE]);
    } finally {
      await app.destroy();
    }
  }
  return { ...target.config, shards: [...target.config.shards, withDatabase(first, 'third', EXTRA_DATABASE)] };
}

/** Empty tables on every shard (standby too) and no migration or rebalance state. */
export async function resetForRebalance(config: ShardKitConfig): Promise<void> {
  const kit = await createShardKit(config);
  try {
    const migrator = new SchemaMigrator(kit);
    await migrator.rollback({ all: true });
    await migrator.latest();
    await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard).schema.dropTableIfExists(MARKERS_TABLE)));
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
