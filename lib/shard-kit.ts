/**
 * The facade a repository layer holds. It wires configuration, topology (guarded nodes), the
 * lag monitor, the engine and the migration coordinator, and delegates: queries to the query
 * pipeline (kit/query-pipeline.ts), status to kit/kit-status.ts, runners to
 * kit/runner-factory.ts, health signals to kit/health-signals.ts, degradation levels to
 * kit/kit-degradation.ts.
 */
import { EventEmitter } from 'node:events';
import { inspect } from 'node:util';
import type { Knex } from 'knex';
import type { ResolvedConfig, ShardKitConfig } from './config/config-types.js';
import { resolveConfig } from './config/resolve-config.js';
import { ColumnTypes } from './engine/column-types.js';
import type { IdGenerator } from './ids/id-generator.js';
import { GlobalIds, type IdOptions } from './kit/global-ids.js';
import { type AtomicParts, type AtomicTransaction, runAtomicTransaction } from './kit/atomic-transaction.js';
import { EscapeHatches } from './kit/escape-hatch.js';
import { InDoubtRecovery, type RecoverOptions } from './kit/in-doubt-recovery.js';
import { type FailoverEvent, type PlannedFailover, PrimaryFailover } from './kit/primary-failover.js';
import { PrimaryRecords } from './kit/primary-records.js';
import { type RoutedTransaction, runTransaction, type TransactionOptions, type TransactionParts, type TransactionTarget } from './kit/routed-transaction.js';
import { KeyTypes } from './engine/key-types.js';
import type { Engine } from './engine/execute-plan.js';
import { applyKeyset, type Page, type PageOptions, toPage } from './engine/keyset-pagination.js';
import { RoutedShardAccess } from './engine/routed-shard-access.js';
import { createRoutingKnex } from './knex/routing-client.js';
import { KitClosedError, type ShardKitError, UnknownTableError, UnsupportedQueryError } from './errors.js';
import { throttleReason, ReplicaFreshness } from './kit/health-signals.js';
import type { ShardKitEvents } from './kit/kit-events.js';
import { type DegradationStatus, KitDegradation, type SetDegradationOptions } from './kit/kit-degradation.js';
import { type DegradationOverride, DegradationOverrides } from './kit/degradation-override.js';
import { type KitStatus, kitStatus, type StatusOptions } from './kit/kit-status.js';
import { type BuilderOptions, QueryPipeline, type TableOptions } from './kit/query-pipeline.js';
import { onlineMigrationRunner, rebalanceRunner, type RunnerSources } from './kit/runner-factory.js';
import { ControlStore } from './migrations/online/control-store.js';
import { MigrationCoordinator } from './migrations/online/migration-coordinator.js';
import type { OnlineMigrationRunner } from './migrations/online/migration-runner.js';
import { migrationTables } from './migrations/online/migration-tables.js';
import type { AnyQueryBuilder } from './knex/builder-internals.js';
import type { RoutingRules } from './planner/plan-query.js';
import type { QueryPlan } from './planner/query-plan.js';
import { parseTableRef } from './planner/query-shape.js';
import { RebalanceFollower } from './rebalance/rebalance-follower.js';
import { REBALANCE_NAME, REBALANCE_TITLE } from './rebalance/rebalance-record.js';
import type { RebalanceRunner } from './rebalance/rebalance-runner.js';
import { ConsistencyToken } from './replicas/consistency-token.js';
import { LagMonitor } from './replicas/lag-monitor.js';
import { type CacheStats, ReadCache } from './cache/read-cache.js';
import { CachedReads, SharedCacheRelay, VERSION_TTL_MS } from './kit/cached-reads.js';
import { RedisTier } from './cache/redis-tier.js';
import { redisUrlOf } from './config/connection-vault.js';
import { ReadRouter } from './replicas/read-router.js';
import { ReadSession } from './replicas/read-session.js';
import { Topology } from './topology/topology.js';
import { DecisionLog } from './transactions/decision-log.js';
import type { RecoveryReport } from './transactions/recover-prepared.js';

export type { TableOptions } from './kit/query-pipeline.js';
export type { KitStatus, NodeHealth, NodeStatus, ShardStatus, StatusOptions } from './kit/kit-status.js';
export type { ShardKitEvents } from './kit/kit-events.js';
export type { DegradationStatus, SetDegradationOptions } from './kit/kit-degradation.js';
export type { DegradationOverride } from './kit/degradation-override.js';

/** knex's transacting() swaps the builder's client, which would bypass routing silently. */
function refuseTransacting(): never {
  throw new UnsupportedQueryError(
    'transacting',
    'a routed builder cannot join a knex transaction: use kit.transaction(key, async (trx) => trx.table(name)...)',
  );
}

export async function createShardKit(config: ShardKitConfig): Promise<ShardKit> {
  const resolved = resolveConfig(config);
  // The topology reports statements and breaker changes to the kit, which exists only after it.
  let kit: ShardKit | undefined;
  let degradation: KitDegradation | undefined;
  const topology = await Topology.open(resolved, {
    onStatement: (event) => kit?.listenerCount('statement') && kit.emit('statement', event),
    onBreaker: (node, state) => kit?.emit('breaker', { shard: node.shard, node: node.name, state }),
    veto: (scope, node) => degradation?.refuseAtNode(scope.priority, scope.purpose ?? 'query', node),
  });
  const shared = await openSharedCache(resolved, () => kit?.cacheStats).catch(async (error: unknown) => {
    await topology.close(resolved.timeouts.closeMs);
    throw error;
  });
  degradation = new KitDegradation({
    config: resolved.degradation,
    overrides: new DegradationOverrides(topology.livePrimary(resolved.migrations.controlShard), Math.min(resolved.timeouts.queryMs, Math.max(1000, 2 * resolved.migrations.pollIntervalMs))),
    pollIntervalMs: resolved.migrations.pollIntervalMs,
    onChange: (event) => kit?.emit('degradation', event),
  });
  kit = new ShardKit(resolved, topology, shared, degradation);
  try {
    // An instance must know every migration's phase and every recorded primary switch before its first write.
    degradation.start();
    await Promise.all([kit.migrationCoordinator.start(), kit.primaryFailover.start()]);
  } catch (error) {
    await kit.close();
    throw error;
  }
  return kit;
}

/** What kit.gather() returns: the rows of the shards that answered, and those that did not. */
export interface Gathered<T> {
  rows: T;
  /** True when every shard answered. */
  complete: boolean;
  missingShards: { shard: string; error: ShardKitError }[];
}

/** The read cache's shared level, opened before the kit (it waits for Redis), and what relays its news to the kit's cache. */
interface SharedCache {
  tier: RedisTier;
  relay: SharedCacheRelay;
}

async function openSharedCache(config: ResolvedConfig, stats: () => object | undefined): Promise<SharedCache | undefined> {
  const options = config.cache.redis;
  if (!options) return undefined;
  const relay = new SharedCacheRelay();
  const tier = await RedisTier.open({ ...options, url: redisUrlOf(options), versionTtlMs: VERSION_TTL_MS }, relay, () => stats() ?? {});
  return { tier, relay };
}

export class ShardKit extends EventEmitter<ShardKitEvents> {
  readonly config: ResolvedConfig;
  /** Shards, nodes and the ring, for tools that work per node (tests, benchmarks). */
  readonly topology: Topology;
  /** This instance's part in online migrations (phases applied, acknowledgements). */
  readonly migrationCoordinator: MigrationCoordinator;
  private readonly monitor: LagMonitor;
  private readonly router: Knex;
  private readonly pipeline: QueryPipeline;
  private readonly follower: RebalanceFollower;
  private readonly runners: RunnerSources;
  private readonly globalIds: GlobalIds;
  private readonly transactionParts: TransactionParts;
  private readonly atomicParts: AtomicParts;
  private readonly inDoubt: InDoubtRecovery;
  /** Follows promoted replicas of shards that list failover candidates (kit/primary-failover.ts). */
  readonly primaryFailover: PrimaryFailover;
  private readonly escapeHatches: EscapeHatches;
  private readonly cache: ReadCache;
  private readonly cachedReads: CachedReads;
  private readonly sharedCache: RedisTier | undefined;
  private readonly degrader: KitDegradation;
  private closed = false;

  constructor(config: ResolvedConfig, topology: Topology, shared: SharedCache | undefined, degradation: KitDegradation) {
    super();
    this.config = config;
    this.topology = topology;
    this.degrader = degradation;
    const keyTypes = new KeyTypes(config.tables, () => {
      const global = topology.shard(config.globalShard).primary;
      return [global, ...topology.shards.map((shard) => shard.primary).filter((primary) => primary !== global)];
    });
    const rules: RoutingRules = {
      family: config.family,
      tables: config.tables,
      globalTables: config.globalTables,
      globalShard: config.globalShard,
      // A live view: a rebalance switches the topology's ring while the kit runs.
      ring: {
        slotOf: (key) => topology.ring.slotOf(key),
        ownerOfSlot: (slot) => topology.ring.ownerOfSlot(slot),
        get shardNames() {
          return topology.ring.shardNames;
        },
      },
      keyColumnOf: (table) => keyTypes.of(table),
      maxShardRows: config.scatter.maxShardRows,
      maxJoinRows: config.scatter.maxJoinRows,
    };
    this.monitor = new LagMonitor(topology.shards, config.lagMonitor);
    const freshness = new ReplicaFreshness(this.monitor, config.reads.maxLagMs);
    this.monitor.observeCycles((shard) => {
      for (const event of freshness.changes(shard)) this.emit('replica', event);
    });
    const engine: Engine = {
      access: new RoutedShardAccess(topology, new ReadRouter(this.monitor), this, (durationMs, code) => degradation.observe(durationMs, code)),
      // Every shard holds the same schema; the global shard's primary answers lookups.
      columnTypes: new ColumnTypes(topology.livePrimary(config.globalShard)),
      family: config.family,
      maxParameters: topology.shard(config.globalShard).primary.dialect.maxParameters,
      bigintsAs: topology.shard(config.globalShard).primary.dialect.bigintsAs,
    };
    this.follower = new RebalanceFollower(topology, config, keyTypes);
    const control = topology.shard(config.migrations.controlShard).primary;
    this.migrationCoordinator = new MigrationCoordinator(
      new ControlStore(topology.livePrimary(config.migrations.controlShard), control.dialect.changeFeed, (name) => (name === REBALANCE_NAME ? REBALANCE_TITLE : `online migration "${name}"`)),
      config.onlineMigrations.map((migration) => migrationTables(migration, config, topology, (table) => keyTypes.of(table))),
      topology,
      { ...config.migrations, maxParameters: engine.maxParameters },
      (event) => this.emit('phase', event),
      this.follower,
    );
    const reached = (shard: string, position: string, target: string) => this.positionReached(shard, position, target);
    this.sharedCache = shared?.tier;
    this.cache = new ReadCache(
      { ...config.cache, keepPastTtlMs: Math.max(...config.degradation.levels.map((level) => level.serveStaleMs)) },
      reached,
      Date.now,
      this.sharedCache && config.cache.redis ? { level: this.sharedCache, lockWaitMs: config.cache.redis.lockWaitMs, keepLocal: config.cache.local } : undefined,
    );
    shared?.relay.serve(this.cache, shared.tier);
    this.cachedReads = new CachedReads({
      config,
      rules,
      cache: this.cache,
      topologyVersion: () => this.migrationCoordinator.topologyVersion ?? 0,
      primaryPosition: (shard) => this.monitor.primaryPosition(shard),
      reached,
      moving: (table) => this.migrationCoordinator.involvement(table).some((involved) => involved.phase !== 'pending') || this.follower.hiddenRows(table) !== undefined,
      ...(this.sharedCache ? { shared: this.sharedCache } : {}),
    });
    this.pipeline = new QueryPipeline({
      config,
      rules,
      keyTypes,
      engine,
      coordinator: this.migrationCoordinator,
      follower: this.follower,
      events: this,
      cache: this.cache,
      cachedReads: this.cachedReads,
      degradation,
    });
    this.router = createRoutingKnex(config.family, {
      execute: async (builder) => (await this.run(builder, 'fail')).result,
      stream: (builder) => this.stream(builder),
    });
    this.globalIds = new GlobalIds(topology.livePrimary(config.migrations.controlShard));
    this.transactionParts = {
      config,
      topology,
      maxParameters: engine.maxParameters,
      builder: (table, transaction) => this.routedBuilder(table, { transaction }),
      migrations: this.migrationCoordinator,
      cacheWrites: this.cachedReads,
    };
    this.escapeHatches = new EscapeHatches(this.migrationCoordinator, config.family, (shard, view) => topology.livePrimary(shard, view));
    const decisions = new DecisionLog(topology.livePrimary(config.migrations.controlShard));
    this.atomicParts = {
      ...this.transactionParts,
      log: decisions,
      onStep: (event) => this.emit('twoPhase', event),
    };
    this.inDoubt = new InDoubtRecovery(topology, decisions, config, (report) => {
      if (report.committed.length + report.rolledBack.length + report.foreign.length > 0) this.emit('recovery', report);
    }, () => this.flushCache());
    this.primaryFailover = new PrimaryFailover(
      topology,
      config.failover,
      { controlShard: config.migrations.controlShard, heartbeatTable: config.lagMonitor.heartbeatTable, records: new PrimaryRecords(topology.livePrimary(config.migrations.controlShard)) },
      (event) => this.emit('failover', event),
    );
    this.runners = {
      config,
      topology,
      coordinator: this.migrationCoordinator,
      follower: this.follower,
      throttleReason: (maxLagMs) => throttleReason(topology, this.monitor, maxLagMs, degradation.throttleReason()),
      onThrottle: (event) => this.emit('throttle', event),
    };
    this.monitor.start();
    this.inDoubt.start();
  }

  /** Shard names in configuration order. */
  get shardNames(): string[] {
    return this.topology.shards.map((shard) => shard.name);
  }

  /** The name of the shard that owns `key` (throws InvalidShardKeyError for a value that is not a key). */
  shardFor(key: unknown): string {
    return this.topology.ring.shardFor(key);
  }

  /**
   * A knex query builder on `table`, routed when it runs: to the owner of the shard key it pins,
   * the owners of a `whereIn` list, each row's owner for inserts, or every shard (selects only).
   * `options` choose where reads go (`{ read: 'replica', maxLagMs: 500 }`) and what they must see.
   */
  table<TRecord extends {} = any, TResult = TRecord[]>(table: string, options: TableOptions = {}): Knex.QueryBuilder<TRecord, TResult> {
    return this.routedBuilder<TRecord, TResult>(table, options);
  }

  /** Like table(), but updates, deletes and truncates without a shard-key condition run on every shard. */
  allShards<TRecord extends {} = any, TResult = TRecord[]>(table: string, options: TableOptions = {}): Knex.QueryBuilder<TRecord, TResult> {
    return this.routedBuilder<TRecord, TResult>(table, { ...options, allShards: true });
  }

  /**
   * The guarded knex instance of the primary that owns `key`: an escape hatch for SQL shardkit
   * does not route (`kit.forKey(id).transaction(...)`). Its statements pass the node's guard
   * (deadline, breaker, admission, typed errors), but are not routed or dual-written: while a
   * migration or rebalance moves a table, writes to it are refused (kit/escape-hatch.ts).
   */
  forKey(key: unknown): Knex {
    this.assertOpen();
    return this.escapeHatches.forShard(this.topology.ownerOf(key).name);
  }

  /**
   * The guarded knex instance of a shard's primary, for per-shard work (schema, maintenance,
   * reports). It follows a failover: one kept from before a switch writes to the promoted node.
   */
  forShard(name: string): Knex {
    this.assertOpen();
    return this.escapeHatches.forShard(this.topology.shard(name).name);
  }

  /**
   * A read-your-writes session, optionally resuming a token from another request or service.
   * Inside `session.run(fn)` writes record their positions and reads carry them.
   */
  session(token?: string | ConsistencyToken): ReadSession {
    return new ReadSession(
      (shard, position, target) => this.positionReached(shard, position, target),
      token === undefined ? undefined : ConsistencyToken.from(token),
      this.cacheUsed(),
    );
  }

  /** Whether `position` of `shard` includes everything up to `target` (always, where the dialect has no positions). */
  private positionReached(shard: string, position: string, target: string): boolean {
    return this.topology.shard(shard).primary.dialect.replication?.reached(position, target) ?? true;
  }

  /** The read cache of this process (docs/cache.md): hits, misses, reads coalesced, stale answers, fills refused, size. */
  get cacheStats(): CacheStats {
    return this.cache.stats;
  }

  /** Drops cached reads of one table or of all: this process's, and with Redis every instance's. */
  async flushCache(table?: string): Promise<void> {
    this.cache.flush(table);
    await this.sharedCache?.flush(table);
  }

  /**
   * A generator of global IDs: unique across shards, processes and restarts, in time order, its
   * worker leased from the control database (see lib/ids/):
   *
   *     const ids = await kit.ids();                       // numbers below 2^53
   *     await kit.table('orders').insert({ user_id, id: ids.next(), amount_cents: 1200 });
   *     const wide = await kit.ids({ format: 'bigint' });  // 64-bit, 4,096 per ms per process
   */
  async ids(options: IdOptions = {}): Promise<IdGenerator> {
    this.assertOpen();
    return this.globalIds.generator(options.format);
  }

  /**
   * A transaction on the shard that owns `key` (or `{ shard: name }`), with routed builders:
   *
   *     await kit.transaction(userId, async (trx) => {
   *       await trx.table('orders').insert({ user_id: userId, id: orderId, amount_cents: 1200 });
   *       await trx.table('users').where('id', userId).update({ name: 'Ada' });
   *     }, { isolation: 'serializable', retries: 3 });
   *
   * A statement that would touch another shard is refused (CROSS_SHARD_TRANSACTION); see
   * kit/routed-transaction.ts for savepoints, retries, deadlines and migrating tables.
   *
   * `{ atomic: true }` instead: statements may reach any shards, and the whole commits with
   * two-phase commit or rolls back everywhere (kit/atomic-transaction.ts).
   */
  transaction<T>(target: { atomic: true }, fn: (trx: AtomicTransaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  transaction<T>(target: unknown, fn: (trx: RoutedTransaction) => Promise<T>, options?: TransactionOptions): Promise<T>;
  transaction<T>(target: unknown, fn: ((trx: RoutedTransaction) => Promise<T>) | ((trx: AtomicTransaction) => Promise<T>), options: TransactionOptions = {}): Promise<T> {
    this.assertOpen();
    if (typeof target === 'object' && target !== null && (target as { atomic?: unknown }).atomic === true) {
      return runAtomicTransaction(this.atomicParts, fn as (trx: AtomicTransaction) => Promise<T>, options);
    }
    const where: TransactionTarget =
      typeof target === 'object' && target !== null && 'shard' in target ? { shard: String((target as { shard: unknown }).shard) } : { key: target };
    return runTransaction(this.transactionParts, where, fn as (trx: RoutedTransaction) => Promise<T>, options);
  }

  /**
   * Settles atomic transactions left prepared by coordinators that died: commits those whose
   * decision was recorded, rolls back the rest once `graceMs` past their deadline; reports
   * prepared transactions shardkit does not own. `dryRun` only reports (`shardkit tx status`).
   */
  recoverTransactions(options: RecoverOptions = {}): Promise<RecoveryReport> {
    this.assertOpen();
    return this.inDoubt.recover(options);
  }

  /**
   * A planned switch of a shard's primary to one of its `failoverCandidates`: writes are held
   * while the old primary is fenced, the candidate catches up and is promoted (docs/failover.md).
   */
  failover(shard: string, options: PlannedFailover & { to: string }): Promise<FailoverEvent> {
    this.assertOpen();
    return this.primaryFailover.failover(shard, options.to, options);
  }

  /** The plan a builder from table() would run, without running it. */
  explain(builder: Knex.QueryBuilder): QueryPlan {
    return this.pipeline.plan(builder as AnyQueryBuilder);
  }

  /**
   * The degradation level in force (docs/degradation.md), who set it (the health signal, or an
   * override), why, and what it changes for non-critical callers.
   */
  get degradation(): DegradationStatus {
    return this.degrader.status();
  }

  /**
   * Sets the degradation level of every instance (the override, on the control database; this
   * instance follows at once, the others within `migrations.pollIntervalMs`), 0 included:
   *
   *     await kit.setDegradation(2, { reason: 'incident 42', forMs: 10 * 60_000 });
   *     await kit.clearDegradation();   // back to each instance's health signal
   */
  setDegradation(level: number, options: SetDegradationOptions = {}): Promise<DegradationOverride> {
    this.assertOpen();
    return this.degrader.set(level, options);
  }

  clearDegradation(): Promise<void> {
    this.assertOpen();
    return this.degrader.clear();
  }

  /** Every node with its role, breaker, in-flight queries and, for replicas, the lag assumed now. */
  status(options: StatusOptions = {}): Promise<KitStatus> {
    const sources = {
      topology: this.topology,
      shardConfigs: this.config.shards,
      monitor: this.monitor,
      coordinator: this.migrationCoordinator,
      follower: this.follower,
      cache: this.cacheUsed() ? { stats: () => this.cache.stats, ...(this.sharedCache ? { shared: this.sharedCache } : {}) } : undefined,
      degradation: () => this.degrader.status(),
    };
    return kitStatus(sources, options);
  }

  /** Whether any table's config caches its reads, or a shared level is configured, or a query asked. */
  private cacheUsed(): boolean {
    return this.sharedCache !== undefined || [...this.config.tables.values()].some((table) => table.cache !== undefined) || this.cache.stats.misses > 0;
  }

  /** Replica probes the lag monitor has made (its cost, for benchmarks). */
  get lagProbeCount(): number {
    return this.monitor.probes;
  }

  /** Reads of primary positions the lag monitor has made (its cost on the primaries, for benchmarks). */
  get lagPrimaryReadCount(): number {
    return this.monitor.primaryReads;
  }

  /**
   * Stops background work and closes every connection, within about `timeouts.closeMs`: calls
   * still running get that long to finish, then their connections are destroyed. The process
   * can exit once it resolves.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // One bound for all of it: background work first, then the calls still running.
    const deadline = performance.now() + this.config.timeouts.closeMs;
    let timer: NodeJS.Timeout | undefined;
    const background = Promise.all([this.primaryFailover.stop(), this.migrationCoordinator.stop(), this.monitor.stop(), this.globalIds.close(), this.inDoubt.stop(), this.sharedCache?.close(), this.degrader.stop()]);
    await Promise.race([background, new Promise((resolve) => (timer = setTimeout(resolve, this.config.timeouts.closeMs)))]);
    clearTimeout(timer);
    await Promise.all([this.topology.close(Math.max(0, deadline - performance.now())), this.router.destroy()]);
  }

  /**
   * Runs a select and returns the rows of the shards that answered with the list of those
   * that did not, instead of failing the whole call:
   *
   *   const { rows, complete, missingShards } = await kit.gather(kit.table('orders').orderBy('id').limit(50));
   */
  async gather<T = unknown[]>(builder: Knex.QueryBuilder): Promise<Gathered<T>> {
    const { result, missing } = await this.run(builder as AnyQueryBuilder, 'allow');
    return { rows: result as T, complete: missing.length === 0, missingShards: missing };
  }

  /**
   * One page of a keyset walk over every shard (see engine/keyset-pagination.ts):
   *
   *   let cursor = null;
   *   do {
   *     const page = await kit.paginate(kit.table('orders').where('status', 'paid'), { orderBy: [{ column: 'id' }], pageSize: 100, cursor });
   *     ...page.rows...
   *     cursor = page.nextCursor;
   *   } while (cursor);
   */
  async paginate<T extends Record<string, unknown> = Record<string, unknown>>(builder: Knex.QueryBuilder, options: PageOptions): Promise<Page<T>> {
    const query = builder.clone();
    this.pipeline.register(query as AnyQueryBuilder, this.pipeline.optionsOf(builder as AnyQueryBuilder));
    query.transacting = refuseTransacting;
    // The cursor's WHERE must put NULLs where this family's ORDER BY puts them.
    return toPage(options.orderBy, (await applyKeyset(query, options, this.config.family)) as T[], options.pageSize);
  }

  /**
   * The runner of an online migration this kit takes part in: start, advance, backfill, verify,
   * rollback, cleanup, status (see migrations/online/migration-runner.ts).
   */
  onlineMigration(name: string): OnlineMigrationRunner {
    return onlineMigrationRunner(this.runners, name);
  }

  /**
   * The runner of rebalances: plan, start, advance, backfill, verify, rollback, cleanup, abort,
   * status (see rebalance/rebalance-runner.ts).
   */
  rebalance(): RebalanceRunner {
    return rebalanceRunner(this.runners);
  }

  /** Shards and nodes, never connection settings. */
  [inspect.custom](): string {
    const nodes = this.topology.nodes().map((node) => `${node.config.name} (${node.config.role}, ${node.config.description})`);
    return `ShardKit { shards: [${this.shardNames.join(', ')}], nodes: [${nodes.join('; ')}]${this.closed ? ', closed' : ''} }`;
  }

  toJSON(): { shards: string[]; nodes: { name: string; shard: string; role: string; where: string }[] } {
    return {
      shards: this.shardNames,
      nodes: this.topology.nodes().map((node) => ({ name: node.config.name, shard: node.config.shard, role: node.config.role, where: node.config.description })),
    };
  }

  private routedBuilder<TRecord extends {}, TResult>(table: string, options: BuilderOptions): Knex.QueryBuilder<TRecord, TResult> {
    this.assertOpen();
    const { name } = parseTableRef(table);
    if (!this.config.tables.has(name) && !this.config.globalTables.has(name)) {
      throw new UnknownTableError(name, [...this.config.tables.keys(), ...this.config.globalTables]);
    }
    const builder = this.router<TRecord, TResult>(table);
    builder.transacting = refuseTransacting;
    if (options.after !== undefined) ConsistencyToken.from(options.after);
    this.pipeline.register(builder as AnyQueryBuilder, options);
    return builder;
  }

  private run(builder: AnyQueryBuilder, partial: 'fail' | 'allow') {
    this.assertOpen();
    return this.pipeline.run(builder, partial);
  }

  private async *stream(builder: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    this.assertOpen();
    yield* this.pipeline.stream(builder);
  }

  private assertOpen(): void {
    if (this.closed) throw new KitClosedError();
  }
}
