import type { KeyType } from '../hashing/key-canonical.js';
import type { OnlineMigration } from './online-migration.js';

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
  /**
   * Connected but owning no keys: a shard about to join the ring through a rebalance
   * (`shardkit rebalance run --add NAME`). Every instance must know its connection before it
   * owns a key, so it is described here first. Default false.
   */
  standby?: boolean;
  primary: NodeConfig;
  replicas?: NodeConfig[];
  /**
   * Replicas (by node name, e.g. `pg-a-replica1`) that may be promoted in the primary's place:
   * when the primary fails, shardkit asks them their role and follows the one promoted, holding
   * writes meanwhile (see `failover`, docs/failover.md). Default none: no failover.
   */
  failoverCandidates?: string[];
}

export interface ShardedTableConfig {
  /** The column whose value decides the shard of every row. */
  shardKey: string;
  /**
   * How the shard-key column compares values (docs/hashing.md, "Keys by column type"): learned
   * from the database on first use unless declared. Declaring 'text' on a case-insensitive
   * column promises that no two keys differ only in case.
   */
  keyType?: KeyType;
  /**
   * A column of the table holding each row's hash slot (docs/rebalance.md, "Slot columns"):
   * the kit writes it with every insert, a trigger clears it when a key changes past the kit, and
   * a rebalance finds the rows it moves by its index instead of listing every key. Add it with
   * `addSlotColumn()` in a schema migration. Default: none.
   */
  slotColumn?: string;
  /** Cache reads of this table in the kit's process (docs/cache.md). Default: not cached. */
  cache?: TableCacheOptions;
}

/** How reads of a table are cached (docs/cache.md). */
export interface TableCacheOptions {
  /** How long an entry answers reads; writes through the kit end it sooner. */
  ttlMs: number;
  /** Share of the TTL taken off at random, so entries filled together do not expire together. Default 0.1. */
  jitter?: number;
  /** How long past its TTL an entry may answer a read that fails with a retryable error (breaker open, shedding, deadline). Default 0: never. */
  staleIfErrorMs?: number;
  /**
   * How long past its TTL an entry no write ended still answers at once while one read refreshes
   * it (in the background, or, across instances, by the holder of the entry's lock). Default 0:
   * an expired entry is read again before it answers.
   */
  staleWhileRevalidateMs?: number;
}

/** The read cache: its in-process level's bounds, and the shared level in Redis. */
export interface CacheOptions {
  /** Entries kept in this process. Default 10,000. */
  maxEntries?: number;
  /** Bytes kept in this process (estimated from the rows held). Default 64 MiB. */
  maxBytes?: number;
  /** Keep entries in this process (L1). Default true; false with `redis` uses the shared level alone. */
  local?: boolean;
  /** A shared level in Redis (L2), invalidated across every instance that uses it. */
  redis?: RedisCacheOptions;
}

export interface RedisCacheOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
  /** Prefix of every key and channel shardkit uses. Default 'shardkit:'. */
  keyPrefix?: string;
  /** Each Redis call's deadline; a slower or failing Redis is bypassed. Default 50. */
  timeoutMs?: number;
  /** How long the instance filling an entry holds its lock. Default 2000. */
  lockMs?: number;
  /** How long other instances wait for that fill before reading themselves. Default 250. */
  lockWaitMs?: number;
}

/** The cache options as resolved; the Redis URL (it may hold a password) is kept in the connection vault. */
export interface ResolvedCacheOptions {
  maxEntries: number;
  maxBytes: number;
  local: boolean;
  redis?: Required<Omit<RedisCacheOptions, 'url'>> & { address: string };
}

export type ReadFrom = 'primary' | 'replica';
/** What a replica read does when no replica is fresh enough. */
export type ReplicaFallback = 'primary' | 'error' | 'wait';

export interface ReadOptions {
  /** Where reads go unless a query says otherwise. Default 'primary'. */
  default?: ReadFrom;
  /** The most a replica read may lag, in ms. Default 1000. */
  maxLagMs?: number;
  /** 'primary' (default): read the primary; 'error': ReplicaLagError; 'wait': wait up to waitMs, then the primary. */
  fallback?: ReplicaFallback;
  /** How long fallback 'wait' waits for a replica to catch up. Default 1000. */
  waitMs?: number;
}

export interface LagMonitorOptions {
  /**
   * How often each primary's position is read: an idle, caught-up replica is known fresh to within
   * about this long. Replicas are probed when the primary moved past them. Default 75.
   */
  intervalMs?: number;
  /** How often a replica that nothing else asks about is probed anyway (its health, its status). Default 1000. */
  idleProbeMs?: number;
  /** A probe slower than this counts as failed (lag unknown). Default 1000. */
  timeoutMs?: number;
  /** The table of shardkit's heartbeat row on every primary (written on MySQL, and while a replica lags). Default 'shardkit_heartbeat'. */
  heartbeatTable?: string;
}

export interface BreakerOptions {
  /** Open when this share of calls in the window failed at the node. Default 50. */
  errorThresholdPercentage?: number;
  /** Calls in the window before the breaker may open. Default 3. */
  volumeThreshold?: number;
  /** How long an open breaker fails fast before a trial call. Default 2000. */
  resetTimeoutMs?: number;
  /** The window failures are counted over. Default 10000. */
  rollingWindowMs?: number;
}

export interface LoadSheddingOptions {
  /** Queries running on one node at once; more wait. Default 10 (knex's default pool size). */
  maxInFlight?: number;
  /** Queries waiting for one node; beyond, the lowest priority is shed. Default 100. */
  maxQueued?: number;
  /**
   * Let each node's limit follow its latency, between `minInFlight` and `maxInFlight`
   * (docs/cross-shard-queries.md): `true` for the defaults. Default false: `maxInFlight` fixed.
   */
  adaptive?: boolean | AdaptiveLoadShedding;
}

export interface AdaptiveLoadShedding {
  /** The limit never goes below this. Default 1. */
  minInFlight?: number;
  /** How often, at most, the limit moves (it also waits for 10 calls). Default 1000. */
  windowMs?: number;
  /** Latency up to this many times the lowest seen counts as no load. Default 2. */
  tolerance?: number;
}

export interface ResolvedLoadShedding {
  maxInFlight: number;
  maxQueued: number;
  adaptive: Required<AdaptiveLoadShedding> | false;
}

/**
 * Degradation levels for the whole kit (docs/degradation.md): a level follows a health signal
 * (p99 latency and error rate of routed queries over a sliding window, with hysteresis) unless
 * an operator's override (`shardkit degrade set N`, in the control database) sets it.
 */
export interface DegradationOptions {
  /** Let the health signal move the level. Default true; the override works either way. */
  enabled?: boolean;
  /** The sliding window the signal's figures cover. Default 10000. */
  windowMs?: number;
  /** How often the signal is judged. Default 1000. */
  evaluateEveryMs?: number;
  /** Calls the window must hold before its figures count (fewer: judged healthy). Default 20. */
  minSamples?: number;
  /**
   * One per level: level i+1 is entered when p99 > thresholds[i].p99Ms or the error rate >
   * thresholds[i].errorRate. Default [{1000, 0.05}, {2500, 0.2}, {5000, 0.5}]: levels 1 to 3.
   */
  thresholds?: DegradationThreshold[];
  /** A level is left only when both figures are below this share of its threshold. Default 0.7. */
  recoverBelow?: number;
  /** How long a level is held before the signal may step down one level. Default 5000. */
  minHoldMs?: number;
  /** Per level (1, 2, ...), what it changes; each level keeps the effects of the one below. */
  effects?: Record<number, DegradationEffects>;
}

export interface DegradationThreshold {
  p99Ms: number;
  /** Share of calls failing for overload (shed, timed out, node unavailable), 0 to 1. */
  errorRate: number;
}

/**
 * What a level changes, for callers that are not `critical` (critical calls are never degraded).
 * Defaults: level 1 sheds background work and pauses backfills; level 2 adds replica reads
 * accepting lag up to 30000 ms and cached values up to 60000 ms past their TTL; level 3 adds
 * refusing reads of more than one shard.
 */
export interface DegradationEffects {
  /** Refuse background-priority queries and transactions before they reach a node (DegradedError). */
  shedBackground?: boolean;
  /** Pause the backfills of online migrations and rebalances (their throttle). */
  pauseBackfill?: boolean;
  /** Replica reads accept lag up to this (ms) whatever bound they asked for; 0: their own bound. */
  replicaMaxLagMs?: number;
  /** Entries of this process's read cache answer up to this long past their TTL instead of a read; 0: never. */
  serveStaleMs?: number;
  /** 'critical-only': reads of more than one shard are refused (DegradedError). */
  scatter?: 'all' | 'critical-only';
}

export type LevelEffects = Required<DegradationEffects>;

export interface ResolvedDegradation {
  enabled: boolean;
  windowMs: number;
  evaluateEveryMs: number;
  minSamples: number;
  thresholds: DegradationThreshold[];
  recoverBelow: number;
  minHoldMs: number;
  /** The effects in force at each level: index 0 (none) up to thresholds.length. */
  levels: LevelEffects[];
}

export interface ScatterOptions {
  /** Shards a multi-shard query runs on at once. Default 16. */
  concurrency?: number;
  /**
   * Rows one shard may return to a merge that holds them all (DISTINCT, GROUP BY on other
   * columns than the shard key, COUNT DISTINCT), and the deepest OFFSET + LIMIT a shard is asked
   * for. Beyond it a query fails with MergeLimitError (or is refused) instead of exhausting
   * memory. Default 200000.
   */
  maxShardRows?: number;
  /** Values a subquery may return to be inlined into its outer query (`IN (...)`). Default 10000. */
  maxInlineValues?: number;
  /** Rows a lookup join may fetch from its inner table (across every batch). Default 100000. */
  maxJoinRows?: number;
}

/**
 * Bounds on waiting for a node, enforced by shardkit on the client whatever the server does.
 * A call that exceeds one settles with QueryTimeoutError, destroys the connection it held and
 * asks the server to cancel its statement.
 */
export interface TimeoutOptions {
  /** A query's deadline unless the call sets `timeoutMs`: admission, connection and statement together. Default 30000. */
  queryMs?: number;
  /** Opening a connection (TCP, TLS, authentication). Default 5000. */
  connectMs?: number;
  /** The longest any call waits for admission and a connection, even with a later deadline. Default 10000. */
  acquireMs?: number;
  /** kit.close(): how long calls still running may finish before their connections are destroyed. Default 3000. */
  closeMs?: number;
  /** Each statement of a schema migration (shardkit migrate). Default 600000. */
  schemaMigrationMs?: number;
}

/**
 * Schema migrations (knexfile-style: the same options as knex's `migrations` section) and the
 * control of online migrations and rebalances.
 */
export interface MigrationsOptions {
  /** Folder(s) of schema migration files. Default 'migrations'. */
  directory?: string | string[];
  /** The table each shard records applied migrations in. Default 'knex_migrations'. */
  tableName?: string;
  /** The schema of that table (PostgreSQL). */
  schemaName?: string;
  /** File extensions loaded as migrations. Default .js .cjs .mjs .ts .cts .mts. */
  loadExtensions?: string[];
  /** What `shardkit migrate make` writes: 'ts' or 'js'. Default 'ts'. */
  extension?: 'ts' | 'js';
  /** Run each migration outside a transaction. Default false. */
  disableTransactions?: boolean;
  /** Where online-migration state lives. Default: the global shard. */
  controlShard?: string;
  /** How often each instance reads migration phases. Default 1000. */
  pollIntervalMs?: number;
  /** How long an instance's acknowledgement counts without renewal. Default 10000. */
  leaseMs?: number;
}

export interface FailoverOptions {
  /** How long writes and primary reads wait for a new primary instead of failing. Default 10000. */
  holdMs?: number;
  /** How often the nodes are asked their role while a switch is under way. Default 200. */
  probeIntervalMs?: number;
  /** How often each instance reads the switches other instances recorded. Default 1000. */
  pollIntervalMs?: number;
}

export interface ShardKitConfig {
  shards: ShardConfig[];
  /** Sharded tables by name. Tables sharing key values (users.id, orders.user_id) are co-located. */
  tables: Record<string, ShardedTableConfig>;
  /** Unsharded tables; every query on them goes to `globalShard`. */
  globalTables?: string[];
  /** Where global tables live. Default: the first shard. */
  globalShard?: string;
  reads?: ReadOptions;
  lagMonitor?: LagMonitorOptions;
  /** Circuit breaker of every node. */
  breaker?: BreakerOptions;
  scatter?: ScatterOptions;
  timeouts?: TimeoutOptions;
  /** Admission control per node. */
  loadShedding?: LoadSheddingOptions;
  /** Online data migrations this application takes part in (dual writes, shadow reads). */
  onlineMigrations?: OnlineMigration[];
  migrations?: MigrationsOptions;
  seeds?: SeedsOptions;
  /** Atomic (two-phase) transactions: recovery of those whose coordinator died. */
  transactions?: TransactionsOptions;
  /** Following a promoted replica when a shard's primary fails (shards listing `failoverCandidates`). */
  failover?: FailoverOptions;
  /** Bounds of the in-process read cache that `tables.<name>.cache` turns on. */
  cache?: CacheOptions;
  /** Degradation levels: what the kit stops doing, or serves less fresh, under load (docs/degradation.md). */
  degradation?: DegradationOptions;
}

export interface TransactionsOptions {
  /** How often each kit settles prepared transactions left in doubt (0: only at start). Default 30000. */
  recoveryIntervalMs?: number;
  /**
   * How long past its deadline a prepared transaction without a decision is left to its
   * coordinator before recovery rolls it back; covers clock skew between processes. Default 30000.
   */
  inDoubtGraceMs?: number;
}

/** knex seeds, run on every shard by `shardkit seed run`. */
export interface SeedsOptions {
  /** Default 'seeds'. */
  directory?: string;
  /** Default .js .cjs .mjs .ts .cts .mts. */
  loadExtensions?: string[];
}

export type NodeRole = 'primary' | 'replica';

/** Where a node is, without credentials. */
export interface NodeAddress {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
}

/**
 * A node as the library sees it. Its connection settings (credentials included) are not part of
 * it: they are kept aside (config/connection-vault.ts), so that a resolved config can be printed.
 */
export interface ResolvedNode {
  name: string;
  shard: string;
  role: NodeRole;
  dialect: Dialect;
  pool: PoolOptions | undefined;
  address: NodeAddress;
  /** Where the node is, without credentials: safe to print. */
  description: string;
}

export interface ResolvedShard {
  name: string;
  weight: number;
  standby: boolean;
  primary: ResolvedNode;
  replicas: ResolvedNode[];
  /** Names of replicas that may replace the primary. */
  failoverCandidates: string[];
}

export interface ResolvedConfig {
  shards: ResolvedShard[];
  tables: ReadonlyMap<string, ShardedTableConfig>;
  globalTables: ReadonlySet<string>;
  globalShard: string;
  family: SqlFamily;
  reads: Required<ReadOptions>;
  lagMonitor: Required<LagMonitorOptions>;
  breaker: Required<BreakerOptions>;
  scatter: { concurrency: number; maxShardRows: number; maxInlineValues: number; maxJoinRows: number };
  timeouts: Required<TimeoutOptions>;
  loadShedding: ResolvedLoadShedding;
  onlineMigrations: OnlineMigration[];
  migrations: Required<Omit<MigrationsOptions, 'schemaName'>> & Pick<MigrationsOptions, 'schemaName'>;
  seeds: Required<SeedsOptions>;
  transactions: Required<TransactionsOptions>;
  failover: Required<FailoverOptions>;
  cache: ResolvedCacheOptions;
  degradation: ResolvedDegradation;
}

/** Typed identity: gives editors the config's shape and catches typos at compile time. */
export function defineConfig(config: ShardKitConfig): ShardKitConfig {
  return config;
}
