/**
 * The local cluster (scripts/cluster.sh) from TypeScript, for tests, demos and benchmarks:
 * start it for the duration of some work, and cause real faults on it: pause a replica's
 * replay, stop replication, kill a server process and start it again. Faults use the servers'
 * admin accounts (postgres with trust on 127.0.0.1, MariaDB root without password), which
 * exist only in this local cluster.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import knexModule, { type Knex } from 'knex';
import type { NodeConfig, ShardConfig, ShardKitConfig } from '../lib/index.js';
import type { NodeHandle } from '../lib/topology/topology.js';

const run = promisify(execFile);
// npm runs scripts from the package root; benchmarks run compiled from .bench/.
const CLUSTER_SCRIPT = join(process.cwd(), 'scripts', 'cluster.sh');

/** Runs `work` with the cluster up: starts it if it is not running, and then stops it again. */
export async function withLocalCluster<T>(work: () => Promise<T>): Promise<T> {
  const running = await run('bash', [CLUSTER_SCRIPT, 'status']).then(
    () => true,
    () => false,
  );
  if (!running) await run('bash', [CLUSTER_SCRIPT, 'up']);
  try {
    return await work();
  } finally {
    if (!running) await run('bash', [CLUSTER_SCRIPT, 'down']);
  }
}

/** Server names of scripts/cluster.sh by port. */
const SERVERS: Record<number, string> = {
  54411: 'pg-a-primary',
  54412: 'pg-a-replica',
  54421: 'pg-b-primary',
  54422: 'pg-b-replica',
  54431: 'pg-c-primary',
  54432: 'pg-c-replica',
  33611: 'maria-a-primary',
  33612: 'maria-a-replica',
  33621: 'maria-b-primary',
  33631: 'maria-c-primary',
  33632: 'maria-c-replica',
};

/** The Redis of scripts/cluster.sh: the read cache's shared level in tests and benchmarks. */
export const REDIS_URL = 'redis://127.0.0.1:6391';

export class ServerControl {
  readonly server: string;
  private readonly port: number;
  private readonly dialect: 'postgres' | 'mysql';

  constructor(node: NodeHandle | { server: 'redis' }) {
    if ('server' in node) {
      this.server = node.server;
      this.port = 6391;
      this.dialect = 'postgres';
      return;
    }
    this.port = Number(node.config.address.port);
    this.server = SERVERS[this.port] ?? `unknown server on port ${this.port}`;
    this.dialect = node.config.dialect === 'mysql' ? 'mysql' : 'postgres';
  }

  /** The cluster's Redis: kill, start, pause and resume (no SQL). */
  static redis(): ServerControl {
    return new ServerControl({ server: 'redis' });
  }

  /** Replay stops (when this returns, not later); the replica keeps receiving, so its lag grows. */
  async pauseReplay(): Promise<void> {
    if (this.dialect === 'mysql') return this.admin('STOP SLAVE SQL_THREAD');
    // pg_wal_replay_pause() only requests the pause; replay stops at the next record.
    await this.admin('select pg_wal_replay_pause()');
    const paused = await eventually(async () => (await this.adminValue("select pg_get_wal_replay_pause_state() as v")) === 'paused', 5000);
    if (!paused) throw new Error(`${this.server}: replay did not pause`);
  }

  /**
   * MariaDB only: replay stalls behind a read lock on `table` while both replication threads keep
   * running, the way a long query on a replica holds replication up: the replica stays readable,
   * reports itself replicating, and its heartbeat stops advancing, so its lag is known and grows
   * (STOP SLAVE SQL_THREAD would make it unknown). Call the returned function to release the lock.
   */
  async stallReplayOn(database: string, table: string): Promise<() => Promise<void>> {
    if (this.dialect !== 'mysql') throw new Error(`${this.server}: stallReplayOn is for MariaDB; use pauseReplay`);
    const db: Knex = knexModule.knex({
      client: 'mysql2',
      connection: { host: '127.0.0.1', port: this.port, user: 'root', database },
      pool: { min: 1, max: 1 },
    });
    const connection = await db.client.acquireConnection();
    try {
      await db.raw('lock tables ?? read', [table]).connection(connection);
    } catch (error) {
      await db.client.releaseConnection(connection);
      await db.destroy();
      throw error;
    }
    return async () => {
      try {
        await db.raw('unlock tables').connection(connection);
      } finally {
        await db.client.releaseConnection(connection);
        await db.destroy();
      }
    };
  }

  resumeReplay(): Promise<void> {
    return this.admin(this.dialect === 'postgres' ? 'select pg_wal_replay_resume()' : 'START SLAVE SQL_THREAD');
  }

  /** MariaDB only: both replication threads stop, so the lag is unknown. */
  stopReplication(): Promise<void> {
    return this.admin('STOP SLAVE');
  }

  startReplication(): Promise<void> {
    return this.admin('START SLAVE');
  }

  async kill(): Promise<void> {
    await run('bash', [CLUSTER_SCRIPT, 'kill', this.server]);
  }

  async start(): Promise<void> {
    await run('bash', [CLUSTER_SCRIPT, 'start', this.server]);
  }

  /** pg_ctl promote: a PostgreSQL replica stops replaying and takes writes. */
  async promote(): Promise<void> {
    await run('bash', [CLUSTER_SCRIPT, 'promote', this.server]);
  }

  /** SIGSTOP: the server keeps accepting TCP connections (the kernel does) but answers nothing. */
  async pause(): Promise<void> {
    await run('bash', [CLUSTER_SCRIPT, 'pause', this.server]);
  }

  async resume(): Promise<void> {
    await run('bash', [CLUSTER_SCRIPT, 'resume', this.server]);
  }

  private async admin(sql: string): Promise<void> {
    await this.adminValue(sql);
  }

  /** Runs `sql` as the server's admin and returns column `v` of its first row. */
  private async adminValue(sql: string): Promise<unknown> {
    const connection =
      this.dialect === 'postgres'
        ? { host: '127.0.0.1', port: this.port, user: 'postgres', database: 'postgres' }
        : { host: '127.0.0.1', port: this.port, user: 'root' };
    const db: Knex = knexModule.knex({ client: this.dialect === 'postgres' ? 'pg' : 'mysql2', connection, pool: { min: 0, max: 1 } });
    try {
      const result = await db.raw(sql);
      const rows = Array.isArray(result) ? result[0] : result.rows;
      return Array.isArray(rows) ? rows[0]?.v : undefined;
    } finally {
      await db.destroy();
    }
  }
}

/** Polls `check` every 20 ms until it passes; false when `timeoutMs` runs out. Errors count as not yet. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve().then(check).catch(() => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

/**
 * `config` with one more shard, on standby, that is another database on the first shard's
 * servers (PostgreSQL: created with the cluster's local admin account; MariaDB: the app user
 * may create shardkit_* databases). Replicas follow, since replication covers the whole server.
 */
export async function withStandbyDatabaseShard(config: ShardKitConfig, name: string, database = 'shardkit_3'): Promise<ShardKitConfig> {
  const [first] = config.shards as [ShardConfig];
  const connection = first.primary.connection as { host: string; port: number };
  if (first.primary.dialect === 'postgres') {
    const admin = knexModule.knex({ client: 'pg', connection: { host: connection.host, port: connection.port, user: 'postgres', database: 'postgres' } });
    try {
      const exists = await admin.raw('select 1 from pg_database where datname = ?', [database]);
      if (exists.rows.length === 0) await admin.raw('create database ?? owner shardkit', [database]);
    } finally {
      await admin.destroy();
    }
  } else {
    const app = knexModule.knex({ client: 'mysql2', connection: { ...connection } });
    try {
      await app.raw('create database if not exists ??', [database]);
    } finally {
      await app.destroy();
    }
  }
  const node = (nodeConfig: NodeConfig) => ({ ...nodeConfig, connection: { ...(nodeConfig.connection as object), database } });
  return { ...config, shards: [...config.shards, { name, standby: true, primary: node(first.primary), replicas: (first.replicas ?? []).map(node) }] };
}
