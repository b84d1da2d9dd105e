/**
 * The path of a routed builder when it runs: plan it (planner/plan-query.ts), hide the second
 * copies of rows a rebalance is moving from statements on every shard, fix its deadline and
 * read preference, and execute it through the engine; a write to a table in an online
 * migration goes through the migration coordinator, which dual-writes it. The kit's
 * degradation level (kit-degradation.ts) applies here for non-critical calls: background work
 * and reads of several shards refused before they reach a node, replica bounds relaxed, cached
 * entries answering past their TTL.
 */
import type { ResolvedConfig } from '../config/config-types.js';
import { type Engine, type Execution, executePlan } from '../engine/execute-plan.js';
import type { KeyTypes } from '../engine/key-types.js';
import type { RoutingOptions } from '../engine/shard-access.js';
import { streamPlan } from '../engine/stream-plan.js';
import type { QueryPriority } from '../errors.js';
import type { MigrationCoordinator } from '../migrations/online/migration-coordinator.js';
import { type AnyQueryBuilder, copyBuilder, internalsOf, READ_METHODS, ROW_METHODS } from '../knex/builder-internals.js';
import { keyIdentity, planQuery, type RoutingRules } from '../planner/plan-query.js';
import type { LookupJoinSpec } from '../planner/plan-lookup-join.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { parseTableRef } from '../planner/query-shape.js';
import { excludeMarked } from '../rebalance/move-markers.js';
import type { RebalanceFollower } from '../rebalance/rebalance-follower.js';
import { ConsistencyToken } from '../replicas/consistency-token.js';
import type { ReadPreference } from '../replicas/read-router.js';
import { currentSession } from '../replicas/read-session.js';
import type { ReadFrom, ReplicaFallback } from '../config/config-types.js';
import { inlineSubqueries } from './inline-subqueries.js';
import { runLookupJoin } from './lookup-join.js';
import type { KitEventSink } from './kit-events.js';
import type { TransactionBinding } from './routed-transaction.js';
import type { CachedRead, CacheOutcome, ReadCache } from '../cache/read-cache.js';
import { withKeyList } from '../knex/key-list.js';
import { answerPerKey } from './per-key-reads.js';
import type { CachedReads, QueryCacheOption } from './cached-reads.js';
import type { KitDegradation } from './kit-degradation.js';


/** Per-query routing, given to kit.table(name, options); unset fields take the config's defaults. */
export interface TableOptions {
  read?: ReadFrom;
  maxLagMs?: number;
  fallback?: ReplicaFallback;
  waitMs?: number;
  /** A consistency token: the read sees at least the writes it records. */
  after?: string | ConsistencyToken;
  /** The call settles within this long, whatever the servers do (default: `timeouts.queryMs`). */
  timeoutMs?: number;
  /** Abandons the call: nothing more is dispatched, running reads are cancelled, and it rejects with QueryCancelledError. */
  signal?: AbortSignal;
  /** Who goes first when a node is saturated: background work is shed first, then normal. Default 'normal'. */
  priority?: QueryPriority;
  /** This read's cache policy (docs/cache.md): `false` reads past the cache; default the table's `cache` config. */
  cache?: QueryCacheOption;
}

export interface BuilderOptions extends TableOptions {
  allShards?: boolean;
  /** The routed transaction the builder runs in (kit.transaction's trx.table()). */
  transaction?: TransactionBinding;
}

export interface PipelineParts {
  config: ResolvedConfig;
  rules: RoutingRules;
  /** Learned before planning, so that keys route as their column compares them. */
  keyTypes: KeyTypes;
  engine: Engine;
  coordinator: MigrationCoordinator;
  follower: RebalanceFollower;
  events: KitEventSink;
  cache: ReadCache;
  cachedReads: CachedReads;
  degradation: KitDegradation;
}

const ROUTING_OPTIONS = Symbol('shardkit.routingOptions');

/** A cache miss reads the primaries: the entry is as fresh as the positions it records. */
function fillRouting(routing: RoutingOptions): RoutingOptions {
  return { ...routing, read: { ...routing.read, from: 'primary' } };
}
type RegisteredBuilder = AnyQueryBuilder & { [ROUTING_OPTIONS]?: BuilderOptions };

export class QueryPipeline {
  private readonly defaultRead: ReadPreference;

  constructor(private readonly parts: PipelineParts) {
    const { default: from, maxLagMs, fallback, waitMs } = parts.config.reads;
    this.defaultRead = { from, maxLagMs, fallback, waitMs };
  }

  /** Remembers how a builder from kit.table() routes (on the builder: a WeakMap entry per read costs more). */
  register(builder: AnyQueryBuilder, options: BuilderOptions): void {
    (builder as RegisteredBuilder)[ROUTING_OPTIONS] = options;
  }

  optionsOf(builder: AnyQueryBuilder): BuilderOptions {
    return (builder as RegisteredBuilder)[ROUTING_OPTIONS] ?? {};
  }

  plan(builder: AnyQueryBuilder): QueryPlan {
    return planQuery(builder, this.parts.rules, { allShards: this.optionsOf(builder).allShards === true });
  }

  async run(builder: AnyQueryBuilder, partial: 'fail' | 'allow'): Promise<Execution> {
    const options = this.optionsOf(builder);
    // A transaction's statement needs no read routing: only the transaction's own deadline.
    if (options.transaction) return { result: await this.inTransaction(builder, options.transaction, this.deadlineOf(options)), missing: [] };
    const early = partial === 'fail' ? this.earlyAnswer(builder, options) : undefined;
    if (early) return early;
    const routing = this.routing(options);
    const { plan, query } = await this.prepare(builder, routing, options);
    if (!ROW_METHODS.has(plan.method)) {
      const mark = this.parts.cachedReads.beforeWrite(query, plan);
      try {
        if (mark.announced) await mark.announced;
        return await this.execute(plan, query, routing, options, partial);
      } finally {
        this.parts.cachedReads.wrote(mark);
      }
    }
    if (partial !== 'fail' || query !== builder) return this.execute(plan, query, routing, options, partial);
    const fromPrimary = fillRouting(routing);
    const outcome = (what: CacheOutcome) => this.cacheOutcome(plan.table, what);
    const { cachedReads, cache, rules } = this.parts;
    // Fills may outlive this call (a stale-while-revalidate refresh, a batch of keys' reads): they
    // read a copy taken before the caller is answered, for it may then change its builder.
    const keyReads = cachedReads.keyReadsOf(query, plan, options.cache, routing);
    if (keyReads) {
      const own = copyBuilder(query);
      // Only while the level serves stale entries: a hit must not pay for copies of every key's read.
      const degraded = this.parts.degradation.staleMs(routing.priority) > 0 ? { ...keyReads, reads: keyReads.reads.map((keyRead) => ({ ...keyRead, read: this.degradedRead(keyRead.read, routing) })) } : keyReads;
      const rows = await answerPerKey(degraded, {
        cache,
        readKeys: async (values) => {
          const part = withKeyList(own, keyReads.list, values);
          this.register(part, options);
          return (await this.execute(this.plan(part), part, fromPrimary, options, partial)).result as Record<string, unknown>[];
        },
        identityOf: (value) => keyIdentity(rules, plan.table, value),
        positionsBefore: (shards) => cachedReads.positionsBefore(shards),
        outcome,
      });
      if (rows) return { result: rows, missing: [] };
    }
    const cached = cachedReads.readOf(query, plan, options.cache, routing);
    if (!cached) return this.execute(plan, query, routing, options, partial);
    const shards = targetShards(plan.route);
    const result = await cache.answer(this.degradedRead(cached, routing), () => {
      // Asked for by a miss or a refresh, before this call is answered; never by a hit.
      const own = copyBuilder(query);
      return { read: async () => (await this.execute(plan, own, fromPrimary, options, partial)).result, positions: cachedReads.positionsBefore(shards) };
    }, outcome);
    return { result, missing: [] };
  }

  /**
   * A cached read answered before it is planned (CachedReads.knownRead): from L1 at once, or,
   * once its dependencies are known, through the cache, planning only when it must read the
   * database. Undefined goes the whole way.
   */
  private earlyAnswer(builder: AnyQueryBuilder, options: BuilderOptions): Execution | Promise<Execution> | undefined {
    const { _method: method, _single: single } = internalsOf(builder);
    if (!ROW_METHODS.has(method ?? 'select') || typeof single.table !== 'string') return undefined;
    const table = parseTableRef(single.table).name;
    const anyPositions = options.after !== undefined || currentSession()?.recordsAny === true;
    const { cachedReads, cache, keyTypes } = this.parts;
    const known = cachedReads.knownRead(builder, table, options.cache, this.readPreference(options), anyPositions);
    if (!known) return undefined;
    const hit = cache.localAnswer(known.key, known.maxAgeMs);
    if (hit) {
      this.cacheOutcome(table, 'hit');
      return { result: hit.value, missing: [] };
    }
    const { dependency } = known;
    if (!dependency || !keyTypes.settled(table)) return undefined;
    const routing = this.routing(options);
    const fromPrimary = fillRouting(routing);
    const fill = () => {
      // A copy, as for the fills of run(): a refresh may outlive this call.
      const own = copyBuilder(builder);
      const plan = this.plan(own);
      return { read: async () => (await this.execute(plan, own, fromPrimary, options, 'fail')).result, positions: cachedReads.positionsBefore(targetShards(plan.route)) };
    };
    return cache.answer(this.degradedRead({ ...known, dependency, deadline: routing.deadline }, routing), fill, (what) => this.cacheOutcome(table, what)).then((result) => ({ result, missing: [] }));
  }

  /** A cached read of a non-critical caller, while the level serves stale entries: it accepts them that long past TTL. */
  private degradedRead<T extends CachedRead>(read: T, routing: RoutingOptions): T {
    const staleMs = this.parts.degradation.staleMs(routing.priority);
    return staleMs > 0 ? { ...read, staleMs } : read;
  }

  /** Refuses what the degradation level does not run for this caller (background work, reads of several shards). */
  private admitDegraded(plan: QueryPlan, routing: RoutingOptions): void {
    if (this.parts.degradation.level === 0) return;
    const refused = this.parts.degradation.refuseQuery(routing.priority, { table: plan.table, read: READ_METHODS.has(plan.method), shards: targetShards(plan.route).length });
    if (refused) throw refused;
  }

  private cacheOutcome(table: string, outcome: CacheOutcome): void {
    if (this.parts.events.listenerCount('cache') > 0) this.parts.events.emit('cache', { table, outcome });
  }

  /** Runs a planned query on its shards (the migration coordinator's dual writes and shadow reads included). */
  private async execute(plan: QueryPlan, query: AnyQueryBuilder, routing: RoutingOptions, options: BuilderOptions, partial: 'fail' | 'allow'): Promise<Execution> {
    const { config, engine, coordinator } = this.parts;
    if (plan.lookupJoin) return { result: await this.lookupJoin(query, plan.lookupJoin, routing, options), missing: [] };
    this.admitDegraded(plan, routing);
    const statement = this.withoutSecondCopies(plan, query);
    const execute = () =>
      executePlan(plan, statement, engine, routing, {
        concurrency: config.scatter.concurrency,
        partial,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    const involved = coordinator.involvement(plan.table);
    if (involved.length === 0) {
      const execution = execute();
      if (!ROW_METHODS.has(plan.method)) coordinator.trackWrite(execution);
      return this.reportScatter(plan, await execution);
    }
    if (ROW_METHODS.has(plan.method)) {
      const execution = this.reportScatter(plan, await execute());
      coordinator.afterRead(plan.table, execution.result);
      return execution;
    }
    const dualWrites = coordinator.dualWrites(plan);
    if (dualWrites.length === 0) return this.reportScatter(plan, await coordinator.trackWrite(execute()));
    return { result: await coordinator.trackWrite(coordinator.write(plan, statement, dualWrites, routing)), missing: [] };
  }

  async *stream(builder: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    const options = this.optionsOf(builder);
    if (options.transaction) {
      // Inside a transaction the rows come on its connection, whole.
      yield* (await this.inTransaction(builder, options.transaction, this.deadlineOf(options))) as Record<string, unknown>[];
      return;
    }
    const routing = this.routing(options);
    const { plan, query } = await this.prepare(builder, routing, options);
    if (plan.lookupJoin) {
      // A lookup join is joined in memory (bounded by scatter.maxJoinRows) before its first row.
      yield* (await this.lookupJoin(query, plan.lookupJoin, routing, options)) as Record<string, unknown>[];
      return;
    }
    this.admitDegraded(plan, routing);
    yield* streamPlan(plan, this.withoutSecondCopies(plan, query), this.parts.engine, routing);
  }

  /** A routed transaction's statement: planned as any, run on the transaction's connection. */
  private async inTransaction(builder: AnyQueryBuilder, transaction: TransactionBinding, deadline: number): Promise<unknown> {
    const { keyTypes } = this.parts;
    const table = parseTableRef(internalsOf(builder)._single.table).name;
    if (!keyTypes.settled(table)) await keyTypes.learn(table, deadline);
    return transaction.execute(this.plan(builder), builder);
  }

  /** Runs a lookup join's queries through the kit, within the call's deadline. */
  private lookupJoin(query: AnyQueryBuilder, spec: LookupJoinSpec, routing: RoutingOptions, options: BuilderOptions): Promise<unknown> {
    return runLookupJoin(query, spec, {
      family: this.parts.config.family,
      columnTypes: this.parts.engine.columnTypes,
      run: (part) => this.runPart(part, routing, options),
    });
  }

  /** A query the kit runs on behalf of another (a subquery, a side of a join): its rows. */
  private async runPart(part: AnyQueryBuilder, routing: RoutingOptions, options: BuilderOptions): Promise<Record<string, unknown>[]> {
    this.register(part, { ...options, allShards: false, timeoutMs: Math.max(1, Math.round(routing.deadline - performance.now())) });
    return (await this.run(part, 'fail')).result as Record<string, unknown>[];
  }

  /** The plan of the query, after the subqueries it inlines are answered (within the call's deadline). */
  private async prepare(builder: AnyQueryBuilder, routing: RoutingOptions, options: BuilderOptions): Promise<{ plan: QueryPlan; query: AnyQueryBuilder }> {
    await this.parts.keyTypes.learn(parseTableRef(internalsOf(builder)._single.table).name, routing.deadline);
    const plan = this.plan(builder);
    if (!plan.inline) return { plan, query: builder };
    const runSubquery = (subquery: AnyQueryBuilder) => this.runPart(subquery, routing, options);
    const { query } = await inlineSubqueries(builder, plan.inline, runSubquery, this.parts.config.scatter.maxInlineValues);
    this.register(query, options);
    return { plan: this.plan(query), query };
  }

  /**
   * During a rebalance a moving row has a second copy on another serving shard; a statement on
   * every shard excludes the marked copies (see rebalance/move-markers.ts) so it sees each row once.
   */
  private withoutSecondCopies(plan: QueryPlan, builder: AnyQueryBuilder): AnyQueryBuilder {
    if (plan.route.kind !== 'all') return builder;
    const { config, follower } = this.parts;
    const direction = follower.hiddenRows(plan.table);
    const { shardKey, slotColumn } = config.tables.get(plan.table) ?? {};
    if (!direction || !shardKey) return builder;
    const filtered = copyBuilder(builder);
    const { qualifier } = parseTableRef(internalsOf(builder)._single.table);
    excludeMarked(filtered, config.family, `${qualifier}.${shardKey}`, plan.table, direction, slotColumn && `${qualifier}.${slotColumn}`);
    return filtered;
  }

  private reportScatter<T extends { missing: readonly unknown[] }>(plan: QueryPlan, execution: T): T {
    const { events } = this.parts;
    if ((plan.route.kind === 'all' || plan.route.kind === 'some') && events.listenerCount('scatter') > 0) {
      events.emit('scatter', { table: plan.table, shards: plan.route.shards.length, missing: execution.missing.length });
    }
    return execution;
  }

  private deadlineOf(options: BuilderOptions): number {
    return performance.now() + (options.timeoutMs ?? this.parts.config.timeouts.queryMs);
  }

  /** The call's routing, its deadline fixed now: every shard, retry and wait of the call shares it. */
  private routing(options: BuilderOptions): RoutingOptions {
    const session = currentSession();
    const timeoutMs = options.timeoutMs ?? this.parts.config.timeouts.queryMs;
    const priority = options.priority ?? 'normal';
    return {
      read: this.parts.degradation.readPreference(this.readPreference(options), priority),
      priority,
      deadline: performance.now() + timeoutMs,
      timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.after === undefined ? {} : { after: ConsistencyToken.from(options.after) }),
      ...(session ? { session } : {}),
    };
  }

  private readPreference(options: TableOptions): ReadPreference {
    const defaults = this.parts.config.reads;
    if (options.read === undefined && options.maxLagMs === undefined && options.fallback === undefined && options.waitMs === undefined) {
      return this.defaultRead;
    }
    return {
      from: options.read ?? defaults.default,
      maxLagMs: options.maxLagMs ?? defaults.maxLagMs,
      fallback: options.fallback ?? defaults.fallback,
      waitMs: options.waitMs ?? defaults.waitMs,
    };
  }
}
