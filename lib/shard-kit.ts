/**
 * The facade a repository layer holds: it wires configuration, topology, planner, engine,
 * node guards and the replica lag monitor, and hands out knex builders that are routed when
 * they run.
 */
import { EventEmitter } from 'node:events';
import type { Knex } from 'knex';
import type { NodeRole, ReadFrom, ReplicaFallback, ResolvedConfig, ShardKitConfig } from './config/config-types.js';
import { resolveConfig } from './config/resolve-config.js';
import { type Engine, executePlan } from './engine/execute-plan.js';
import { type QueryEvent, RoutedShardAccess } from './engine/routed-shard-access.js';
import { applyKeyset, type Page, type PageOptions, toPage } from './engine/keyset-pagination.js';
import { createRoutingKnex } from './engine/routing-knex.js';
import { streamPlan } from './engine/stream-plan.js';
import { ColumnTypes } from './engine/column-types.js';
import type { RoutingOptions } from './engine/shard-access.js';
import {
  KitClosedError,
  type QueryPriority,
  type ShardKitError,
  UnknownMigrationError,
  UnknownTableError,
  TopologySwitchingError,
  UnsupportedQueryError,
} from './errors.js';
import { ControlStore } from './migrations/online/control-store.js';
import { MigrationCoordinator } from './migrations/online/migration-coordinator.js';
import { OnlineMigrationRunner, type RunnerContext } from './migrations/online/migration-runner.js';
import type { MigrationTables } from './migrations/online/migration-tables.js';
import { migrationTables } from './migrations/online/migration-tables.js';
import { type AnyQueryBuilder, copyBuilder, internalsOf } from './planner/builder-internals.js';
import { planQuery, type RoutingRules } from './planner/plan-query.js';
import type { QueryPlan } from './planner/query-plan.js';
import { parseTableRef } from './planner/query-shape.js';
import { ConsistencyToken } from './replicas/consistency-token.js';
import { LagMonitor } from './replicas/lag-monitor.js';
import { lagAt } from './replicas/lag-reading.js';
import { type ReadPreference, ReadRouter } from './replicas/read-router.js';
import { currentSession, ReadSession } from './replicas/read-session.js';
import type { BreakerState } from './resilience/node-breaker.js';
import { NodeGuards } from './resilience/node-guards.js';
import { type ShardHandle, Topology } from './topology/topology.js';
import { excludeMarked } from './rebalance/move-markers.js';
import { RebalanceFollower } from './rebalance/rebalance-follower.js';
import { REBALANCE_NAME } from './rebalance/rebalance-record.js';
import { RebalanceRunner } from './rebalance/rebalance-runner.js';
import type { BreakerEvent, PhaseEvent, ReplicaEvent, ScatterEvent, ThrottleEvent } from './observability/state-events.js';

const READ_METHODS = new Set(['select', 'first', 'pluck']);

/** knex's transacting() swaps the builder's client, which would bypass routing silently. */
function refuseTransacting(): never {
  throw new UnsupportedQueryError(
    'transacting',
    'a routed builder cannot join a transaction: use kit.forKey(key).transaction(async (trx) => trx(table)...)',
  );
}

export async function createShardKit(config: ShardKitConfig): Promise<ShardKit> {
  const resolved = resolveConfig(config);
  const kit = new ShardKit(resolved, await Topology.open(resolved));
  try {
    // An instance must know every migration's phase before its first write.
    await kit.migrationCoordinator.start();
  } catch (error) {
    await kit.close();
    throw error;
  }
  return kit;
}

/** Per-query routing, given to kit.table(name, options); unset fields take the config's defaults. */
export interface TableOptions {
  read?: ReadFrom;
  maxLagMs?: number;
  fallback?: ReplicaFallback;
  waitMs?: number;
  /** A consistency token: the read sees at least the writes it records. */
  after?: string | ConsistencyToken;
  /** Each shard's query is cancelled on the server after this long (default: `scatter.timeoutMs`). */
  timeoutMs?: number;
  /** Abandons the call: nothing more is dispatched and it rejects with QueryCancelledError. */
  signal?: AbortSignal;
  /** Who goes first when a node is saturated: background work is shed first, then normal. Default 'normal'. */
  priority?: QueryPriority;
}

/** What kit.gather() returns: the rows of the shards that answered, and those that did not. */
export interface Gathered<T> {
  rows: T;
  /** True when every shard answered. */
  complete: boolean;
  missingShards: { shard: string; error: ShardKitError }[];
}

interface BuilderOptions extends TableOptions {
  allShards?: boolean;
}

export interface NodeStatus {
  shard: string;
  node: string;
  role: NodeRole;
  /** Where the node is, without credentials. */
  where: string;
  breaker: BreakerState;
  inFlight: number;
  /** Queries waiting for admission. */
  queued: number;
  /** Queries shed since the kit started. */
  shed: number;
  /** Replicas: the lag assumed now (undefined when unknown). */
  lagMs?: number;
  /** Replicas: how old the lag reading is. */
  readingAgeMs?: number;
  /** Replicas: why the lag is unknown. */
  problem?: string;
}

export interface ShardStatus {
  shard: string;
  weight: number;
  /** Connected, owning no keys (waiting to be added by a rebalance). */
  standby: boolean;
  /** Hash slots the shard owns, of 1,048,576. */
  slots: number;
}

export interface KitStatus {
  shards: ShardStatus[];
  nodes: NodeStatus[];
  /** Online migrations this kit follows, with the phase it applies. */
  migrations: { name: string; phase: string; version: number }[];
  /** The last rebalance this kit applies (absent when none ever ran); `cleaned` once it is over. */
  rebalance?: { phase: string; version: number; switching: boolean; cleaned: boolean };
}

export interface ShardKitEvents {
  query: [QueryEvent];
  breaker: [BreakerEvent];
  replica: [ReplicaEvent];
  phase: [PhaseEvent];
  throttle: [ThrottleEvent];
  scatter: [ScatterEvent];
}

export class ShardKit extends EventEmitter<ShardKitEvents> {
  readonly config: ResolvedConfig;
  /** Shards, nodes and the ring, for tools that work per node (migrations, status). */
  readonly topology: Topology;
  private readonly rules: RoutingRules;
  private readonly guards: NodeGuards;
  private readonly monitor: LagMonitor;
  private readonly engine: Engine;
  private readonly router: Knex;
  /** This instance's part in online migrations (phases applied, acknowledgements). */
  readonly migrationCoordinator: MigrationCoordinator;
  private readonly builderOptions = new WeakMap<AnyQueryBuilder, BuilderOptions>();
  private readonly defaultReadPreference: ReadPreference;
  private readonly replicaFresh = new Map<string, boolean>();
  private readonly rebalanceFollower: RebalanceFollower;
  private closed = false;

  constructor(config: ResolvedConfig, topology: Topology) {
    super();
    this.config = config;
    this.topology = topology;
    this.rules = {
      family: config.family,
      tables: config.tables,
      globalTables: config.globalTables,
      globalShard: config.globalShard,
      // A live view: a rebalance switches the topology's ring while the kit runs.
      ring: {
        shardFor: (key) => topology.ring.shardFor(key),
        get shardNames() {
          return topology.ring.shardNames;
        },
      },
    };
    this.guards = new NodeGuards(topology.nodes(), config.breaker, config.loadShedding, (node, state) =>
      this.emit('breaker', { shard: node.config.shard, node: node.config.name, state }),
    );
    this.monitor = new LagMonitor(topology.shards, this.guards, config.lagMonitor);
    this.monitor.observeCycles((shard) => this.reportReplicaFreshness(shard));
    const readRouter = new ReadRouter(this.monitor, this.guards);
    this.engine = {
      access: new RoutedShardAccess(topology, this.guards, readRouter, this),
      // Every shard holds the same schema; the global shard's primary answers lookups.
      columnTypes: new ColumnTypes(topology.shard(config.globalShard).primary.knex),
      family: config.family,
    };
    this.router = createRoutingKnex(config.family, {
      execute: (builder) => this.execute(builder),
      stream: (builder) => this.stream(builder),
    });
    const { default: from, maxLagMs, fallback, waitMs } = config.reads;
    this.defaultReadPreference = { from, maxLagMs, fallback, waitMs };
    this.rebalanceFollower = new RebalanceFollower(topology, config);
    const control = topology.shard(config.migrations.controlShard).primary;
    const store = new ControlStore(control.knex, control.dialect.changeFeed);
    this.migrationCoordinator = new MigrationCoordinator(
      store,
      config.onlineMigrations.map((migration) => migrationTables(migration, config, topology)),
      topology,
      config.migrations,
      (event) => this.emit('phase', event),
      this.rebalanceFollower,
    );
    this.monitor.start();
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
    this.assertOpen();
    const { name } = parseTableRef(table);
    if (!this.config.tables.has(name) && !this.config.globalTables.has(name)) {
      throw new UnknownTableError(name, [...this.config.tables.keys(), ...this.config.globalTables]);
    }
    const builder = this.router<TRecord, TResult>(table);
    builder.transacting = refuseTransacting;
    if (options.after !== undefined) ConsistencyToken.from(options.after);
    this.builderOptions.set(builder as AnyQueryBuilder, options);
    return builder;
  }

  /** Like table(), but updates, deletes and truncates without a shard-key condition run on every shard. */
  allShards<TRecord extends {} = any, TResult = TRecord[]>(table: string, options: TableOptions = {}): Knex.QueryBuilder<TRecord, TResult> {
    const builder = this.table<TRecord, TResult>(table, options);
    this.builderOptions.set(builder as AnyQueryBuilder, { ...options, allShards: true });
    return builder;
  }

  /** The knex instance of the primary that owns `key`: `kit.forKey(id).transaction(...)` is a single-shard transaction. */
  forKey(key: unknown): Knex {
    this.assertOpen();
    return this.topology.ownerOf(key).primary.knex;
  }

  /** The knex instance of a shard's primary, for per-shard work (schema, maintenance, reports). */
  forShard(name: string): Knex {
    this.assertOpen();
    return this.topology.shard(name).primary.knex;
  }

  /**
   * A read-your-writes session, optionally resuming a token from another request or service.
   * Inside `session.run(fn)` writes record their positions and reads carry them.
   */
  session(token?: string | ConsistencyToken): ReadSession {
    return new ReadSession(
      (shard, position, target) => this.topology.shard(shard).primary.dialect.replication?.reached(position, target) ?? true,
      token === undefined ? undefined : ConsistencyToken.from(token),
    );
  }

  /** The plan a builder from table() would run, without running it. */
  explain(builder: Knex.QueryBuilder): QueryPlan {
    const options = this.builderOptions.get(builder as AnyQueryBuilder);
    return planQuery(builder as AnyQueryBuilder, this.rules, { allShards: options?.allShards === true });
  }

  /** Every node with its role, breaker, in-flight queries and, for replicas, the lag assumed now. */
  async status(): Promise<KitStatus> {
    const now = Date.now();
    const nodes = this.topology.nodes().map((node): NodeStatus => {
      const guard = this.guards.of(node);
      const base: NodeStatus = {
        shard: node.config.shard,
        node: node.config.name,
        role: node.config.role,
        where: node.config.description,
        breaker: guard.breaker.state,
        inFlight: guard.inFlight,
        queued: guard.queued,
        shed: guard.shed,
      };
      if (node.config.role === 'primary') return base;
      const reading = this.monitor.reading(node);
      const lagMs = lagAt(reading, now);
      return {
        ...base,
        ...(lagMs === undefined ? {} : { lagMs }),
        ...(reading ? { readingAgeMs: now - reading.measuredAt } : {}),
        ...(reading?.problem ? { problem: reading.problem } : reading ? {} : { problem: 'not measured yet' }),
      };
    });
    const slots = this.topology.ring.slotCounts();
    const shards = this.config.shards.map((shard) => ({ shard: shard.name, weight: shard.weight, standby: !slots.has(shard.name), slots: slots.get(shard.name) ?? 0 }));
    const migrations = this.migrationCoordinator.names.map((name) => ({ name, phase: 'pending', version: 0, ...this.migrationCoordinator.phaseOf(name) }));
    const moving = this.rebalanceFollower.applied;
    const rebalance = moving && { ...moving, version: this.migrationCoordinator.topologyVersion ?? 0 };
    return { shards, nodes, migrations, ...(rebalance ? { rebalance } : {}) };
  }

  /** Replica probes the lag monitor has made (its cost, for benchmarks). */
  get lagProbeCount(): number {
    return this.monitor.probes;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.migrationCoordinator.stop();
    await this.monitor.stop();
    this.guards.shutdown();
    await Promise.all([this.topology.close(), this.router.destroy()]);
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
    this.builderOptions.set(query as AnyQueryBuilder, this.builderOptions.get(builder as AnyQueryBuilder) ?? {});
    query.transacting = refuseTransacting;
    return toPage(options.orderBy, (await applyKeyset(query, options)) as T[], options.pageSize);
  }

  private async execute(builder: AnyQueryBuilder): Promise<unknown> {
    return (await this.run(builder, 'fail')).result;
  }

  private async *stream(builder: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    this.assertOpen();
    const options = this.builderOptions.get(builder) ?? {};
    const plan = planQuery(builder, this.rules, { allShards: options.allShards === true });
    yield* streamPlan(plan, this.withoutSecondCopies(plan, builder), this.engine, this.routingOptions(options));
  }

  /**
   * During a rebalance a moving row has a second copy on another serving shard; a statement on
   * every shard excludes the marked copies (see rebalance/move-markers.ts) so it sees each row once.
   */
  private withoutSecondCopies(plan: QueryPlan, builder: AnyQueryBuilder): AnyQueryBuilder {
    if (plan.route.kind !== 'all') return builder;
    const direction = this.rebalanceFollower.hiddenRows(plan.table);
    const shardKey = this.config.tables.get(plan.table)?.shardKey;
    if (!direction || !shardKey) return builder;
    const filtered = copyBuilder(builder);
    const { qualifier } = parseTableRef(internalsOf(builder)._single.table);
    excludeMarked(filtered, this.config.family, `${qualifier}.${shardKey}`, plan.table, direction);
    return filtered;
  }

  /**
   * The runner of an online migration this kit takes part in: start, advance, backfill, verify,
   * rollback, cleanup, status (see migrations/online/migration-runner.ts).
   */
  onlineMigration(name: string): OnlineMigrationRunner {
    const tables = this.migrationCoordinator.tablesOf(name);
    if (!tables) throw new UnknownMigrationError(name, this.migrationCoordinator.names);
    return this.phaseRunner(name, () => [tables], {
      startGate: async () => {
        const move = await this.migrationCoordinator.store.peek(REBALANCE_NAME);
        return move?.state.rebalance && !move.state.rebalance.cleaned ? ['a rebalance is in progress: finish it (cleanup) or abort it first'] : [];
      },
    });
  }

  /**
   * The runner of rebalances: plan, start, advance, backfill, verify, rollback, cleanup, abort,
   * status (see rebalance/rebalance-runner.ts).
   */
  rebalance(): RebalanceRunner {
    const phases = this.phaseRunner(REBALANCE_NAME, () => this.rebalanceFollower.movingTables(), { switchesTopology: true });
    return new RebalanceRunner({
      topology: this.topology,
      config: this.config,
      store: this.migrationCoordinator.store,
      coordinator: this.migrationCoordinator,
      phases,
      activeMigrations: async () => {
        const records = await Promise.all(this.migrationCoordinator.names.map((name) => this.migrationCoordinator.store.peek(name)));
        return records.filter((record) => record && record.phase !== 'pending' && record.phase !== 'cleanup').map((record) => record!.name);
      },
    });
  }

  private phaseRunner(name: string, parts: () => MigrationTables[], extra: Pick<RunnerContext, 'switchesTopology' | 'startGate'>): OnlineMigrationRunner {
    const control = this.topology.shard(this.config.migrations.controlShard).primary;
    return new OnlineMigrationRunner({
      name,
      topology: this.topology,
      store: this.migrationCoordinator.store,
      coordinator: this.migrationCoordinator,
      parts,
      lockDb: control.knex,
      locks: control.dialect.locks,
      throttleReason: (maxLagMs) => this.throttleReason(maxLagMs),
      onThrottle: (event) => this.emit('throttle', event),
      ...extra,
    });
  }

  private async run(builder: AnyQueryBuilder, partial: 'fail' | 'allow') {
    this.assertOpen();
    const options = this.builderOptions.get(builder) ?? {};
    const plan = planQuery(builder, this.rules, { allShards: options.allShards === true });
    const statement = this.withoutSecondCopies(plan, builder);
    const execute = () =>
      executePlan(plan, statement, this.engine, this.routingOptions(options), {
        concurrency: this.config.scatter.concurrency,
        partial,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    const involved = this.migrationCoordinator.involvement(plan.table);
    if (involved.length === 0) {
      const execution = execute();
      if (!READ_METHODS.has(plan.method)) this.migrationCoordinator.trackWrite(execution);
      return this.reportScatter(plan, await execution);
    }
    if (READ_METHODS.has(plan.method)) {
      const execution = this.reportScatter(plan, await execute());
      this.migrationCoordinator.afterRead(plan.table, execution.result);
      return execution;
    }
    if (this.migrationCoordinator.writesPaused(plan.table)) throw new TopologySwitchingError(plan.table, this.config.migrations.pollIntervalMs);
    const write = this.migrationCoordinator.write(plan, statement, involved, async () => (await execute()).result, (shard, work) => {
      const { primary } = this.topology.shard(shard);
      return this.guards.of(primary).run(() => work(primary.knex), options.priority ?? 'normal');
    });
    return { result: await this.migrationCoordinator.trackWrite(write), missing: [] };
  }

  private reportScatter<T extends { missing: readonly unknown[] }>(plan: QueryPlan, execution: T): T {
    if ((plan.route.kind === 'all' || plan.route.kind === 'some') && this.listenerCount('scatter') > 0) {
      this.emit('scatter', { table: plan.table, shards: plan.route.shards.length, missing: execution.missing.length });
    }
    return execution;
  }

  /** After a probe cycle: a replica that became usable for default reads, or stopped being, is reported. */
  private reportReplicaFreshness(shard: ShardHandle): void {
    const now = Date.now();
    for (const replica of shard.replicas) {
      const reading = this.monitor.reading(replica);
      const lagMs = lagAt(reading, now);
      const fresh = lagMs !== undefined && lagMs <= this.config.reads.maxLagMs;
      if (this.replicaFresh.get(replica.config.name) === fresh) continue;
      this.replicaFresh.set(replica.config.name, fresh);
      this.emit('replica', { shard: shard.name, node: replica.config.name, fresh, lagMs, ...(reading?.problem ? { problem: reading.problem } : {}) });
    }
  }

  /** Why bulk copying should pause: a replica lagging beyond `maxLagMs`, or queries queued on a primary. */
  private throttleReason(maxLagMs: number): string | undefined {
    const now = Date.now();
    for (const shard of this.topology.shards) {
      const queued = this.guards.of(shard.primary).queued;
      if (queued > 0) return `${queued} queries queued on ${shard.primary.config.name}`;
      for (const replica of shard.replicas) {
        const lagMs = lagAt(this.monitor.reading(replica), now);
        if (lagMs !== undefined && lagMs > maxLagMs) return `${replica.config.name} lags ${lagMs} ms`;
      }
    }
    return undefined;
  }


  private routingOptions(options: BuilderOptions): RoutingOptions {
    const session = currentSession();
    const read = this.readPreference(options);
    const timeoutMs = options.timeoutMs ?? this.config.scatter.timeoutMs;
    const priority = options.priority ?? 'normal';
    if (options.after === undefined && timeoutMs === undefined) return session ? { read, priority, session } : { read, priority };
    return {
      read,
      priority,
      ...(options.after === undefined ? {} : { after: ConsistencyToken.from(options.after) }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(session ? { session } : {}),
    };
  }

  private readPreference(options: TableOptions): ReadPreference {
    const defaults = this.config.reads;
    if (options.read === undefined && options.maxLagMs === undefined && options.fallback === undefined && options.waitMs === undefined) {
      return this.defaultReadPreference;
    }
    return {
      from: options.read ?? defaults.default,
      maxLagMs: options.maxLagMs ?? defaults.maxLagMs,
      fallback: options.fallback ?? defaults.fallback,
      waitMs: options.waitMs ?? defaults.waitMs,
    };
  }

  private assertOpen(): void {
    if (this.closed) throw new KitClosedError();
  }
}
