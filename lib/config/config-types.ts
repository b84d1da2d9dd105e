/**
 * The shape of a shardkit configuration as users write it (`defineConfig({...})`), and the
 * resolved form the rest of the library reads (defaults filled in, names assigned).
 */

export const DIALECTS = ['postgres', 'mysql', 'pglite'] as const;
/** postgres: PostgreSQL through `pg`; mysql: MySQL or MariaDB through `mysql2`; pglite: embedded. */
export type Dialect = (typeof DIALECTS)[number];
/** Dialects that speak the same SQL and can share one kit. */
export type SqlFamily = 'postgres' | 'mysql';

export interface PgliteConnection {
  /** Folder for the database files (created if missing); omit for an in-memory database. */
  dataDir?: string;
}

/** A knex connection: a connection string or a driver connection object. */
export type ServerConnection = string | Record<string, unknown>;

export interface PoolOptions {
  min?: number;
  max?: number;
}

export interface NodeConfig {
  /** Unique across the config; default `<shard>-primary`, `<shard>-replica<N>`. */
  name?: string;
  dialect: Dialect;
  connection: ServerConnection | PgliteConnection;
  /** knex pool for this node (ignored for pglite, which has one connection). */
  pool?: PoolOptions;
}

export interface ShardConfig {
  /** ASCII letters, digits, `_`, `.`, `-`; at most 63 characters. */
  name: string;
  /** Relative capacity; a shard with weight 2 owns twice the keys of one with weight 1. Default 1. */
  weight?: number;
  primary: NodeConfig;
  replicas?: NodeConfig[];
}

export interface ShardedTableConfig {
  /** The column whose value decides the shard of every row. */
  shardKey: string;
}

export interface ShardKitConfig {
  shards: ShardConfig[];
  /** Sharded tables by name. Tables sharing key values (users.id, orders.user_id) are co-located. */
  tables: Record<string, ShardedTableConfig>;
  /** Unsharded tables; every query on them goes to `globalShard`. */
  globalTables?: string[];
  /** Where global tables live. Default: the first shard. */
  globalShard?: string;
}

export type NodeRole = 'primary' | 'replica';

export interface ResolvedNode {
  name: string;
  shard: string;
  role: NodeRole;
  dialect: Dialect;
  connection: ServerConnection | PgliteConnection;
  pool: PoolOptions | undefined;
  /** Where the node is, without credentials: safe to print. */
  description: string;
}

export interface ResolvedShard {
  name: string;
  weight: number;
  primary: ResolvedNode;
  replicas: ResolvedNode[];
}

export interface ResolvedConfig {
  shards: ResolvedShard[];
  tables: ReadonlyMap<string, ShardedTableConfig>;
  globalTables: ReadonlySet<string>;
  globalShard: string;
  family: SqlFamily;
}

/** Typed identity: gives editors the config's shape and catches typos at compile time. */
export function defineConfig(config: ShardKitConfig): ShardKitConfig {
  return config;
}
