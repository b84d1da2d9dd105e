/**
 * The databases integration tests run against, each as a shardkit config: embedded PGlite,
 * the local PostgreSQL cluster and the local MariaDB (scripts/cluster.sh, started by npm test).
 * Suites loop over TARGETS so every case runs on every dialect.
 */
import clusterPostgres, { mariadb as clusterMariadb } from '../../shards.cluster.config.js';
import { createShardKit, SchemaMigrator, type ShardKit, type ShardKitConfig } from '../../lib/index.js';

export interface Target {
  name: string;
  config: ShardKitConfig;
}

const embedded: ShardKitConfig = {
  shards: ['emb-1', 'emb-2', 'emb-3'].map((name) => ({ name, primary: { dialect: 'pglite', connection: {} } })),
  tables: clusterPostgres.tables,
  globalTables: clusterPostgres.globalTables ?? [],
};

export const TARGETS: readonly Target[] = [
  { name: 'pglite', config: embedded },
  { name: 'postgres cluster', config: clusterPostgres },
  { name: 'mariadb cluster', config: clusterMariadb },
];

/** A kit on `target` whose shards hold the schema of migrations/ and no rows. */
export async function openFreshKit(target: Target): Promise<ShardKit> {
  const kit = await createShardKit(target.config);
  const migrator = new SchemaMigrator(kit);
  await migrator.rollback({ all: true });
  await migrator.latest();
  return kit;
}
