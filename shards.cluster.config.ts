/**
 * The local cluster that `scripts/cluster.sh up` starts (and `npm test` uses):
 *
 *   default  two PostgreSQL shards, each a primary with one streaming replica
 *   mariadb  two MariaDB shards, each on its own server: maria-1 a primary with a GTID replica,
 *            maria-2 a primary alone
 *   cached   the PostgreSQL one with reads of `users` cached, shared through the cluster's Redis
 *   failover pg-a, and pg-c: a primary whose synchronous replica may be promoted in its place
 *   failoverMariadb  maria-1, and maria-c: a primary whose semi-synchronous replica may be promoted
 *
 * SHARDKIT_CONFIG=shards.cluster.config.ts picks the PostgreSQL one,
 * SHARDKIT_CONFIG=shards.cluster.config.ts#mariadb the MariaDB one.
 * The password is the cluster's local test credential, not a secret of any real system.
 */
import type { NodeConfig, ShardKitConfig } from './lib/index.js';

const user = 'shardkit';
const password = 'shardkit-local-test';
const host = '127.0.0.1';

const tables: ShardKitConfig['tables'] = {
  users: { shardKey: 'id' },
  users_v2: { shardKey: 'id' },
  orders: { shardKey: 'user_id' },
};

const postgresNode = (port: number): NodeConfig => ({
  dialect: 'postgres',
  connection: { host, port, user, password, database: 'shardkit' },
});

export default {
  shards: [
    { name: 'pg-a', primary: postgresNode(54411), replicas: [postgresNode(54412)] },
    { name: 'pg-b', primary: postgresNode(54421), replicas: [postgresNode(54422)] },
  ],
  tables,
  globalTables: ['countries'],
} satisfies ShardKitConfig;

const mariadbNode = (port: number, database: string): NodeConfig => ({
  dialect: 'mysql',
  connection: { host, port, user, password, database },
});

export const mariadb = {
  shards: [
    { name: 'maria-1', primary: mariadbNode(33611, 'shardkit_1'), replicas: [mariadbNode(33612, 'shardkit_1')] },
    { name: 'maria-2', primary: mariadbNode(33621, 'shardkit_2') },
  ],
  tables,
  globalTables: ['countries'],
} satisfies ShardKitConfig;

/** The PostgreSQL cluster with `users` reads cached, shared through the cluster's Redis (scripts/cluster.sh). */
export const cached = {
  shards: [
    { name: 'pg-a', primary: postgresNode(54411), replicas: [postgresNode(54412)] },
    { name: 'pg-b', primary: postgresNode(54421), replicas: [postgresNode(54422)] },
  ],
  tables: { ...tables, users: { shardKey: 'id', cache: { ttlMs: 60_000 } } },
  globalTables: ['countries'],
  cache: { redis: { url: 'redis://127.0.0.1:6391' } },
} satisfies ShardKitConfig;

/**
 * pg-a, and pg-c: a primary with a synchronous replica (every acknowledged commit is on both)
 * that shardkit follows when it is promoted (docs/failover.md; `scripts/cluster.sh promote
 * pg-c-replica`, or `shardkit failover pg-c --to pg-c-replica1`; `rebuild pg-c` resets the pair).
 */
export const failover = {
  shards: [
    { name: 'pg-a', primary: postgresNode(54411), replicas: [postgresNode(54412)] },
    { name: 'pg-c', primary: postgresNode(54431), replicas: [postgresNode(54432)], failoverCandidates: ['pg-c-replica1'] },
  ],
  tables,
  globalTables: ['countries'],
} satisfies ShardKitConfig;

/** maria-1, and maria-c: a MariaDB primary with a semi-synchronous replica that shardkit follows when it is promoted. */
export const failoverMariadb = {
  shards: [
    { name: 'maria-1', primary: mariadbNode(33611, 'shardkit_1'), replicas: [mariadbNode(33612, 'shardkit_1')] },
    { name: 'maria-c', primary: mariadbNode(33631, 'shardkit_c'), replicas: [mariadbNode(33632, 'shardkit_c')], failoverCandidates: ['maria-c-replica1'] },
  ],
  tables,
  globalTables: ['countries'],
} satisfies ShardKitConfig;
