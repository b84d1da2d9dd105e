/**
 * The read cache on the routed path (cache/read-cache.ts does the caching); this decides which
 * reads it may answer, what identifies them, and what each routed write moves.
 *
 * Cached: selects (rows, first, pluck, aggregates) through kit.table() on a table whose config
 * (`tables.<name>.cache`) or the query (`kit.table(name, { cache })`) asks for it, that read that
 * table alone (a join or a subquery would depend on writes to another table), outside a
 * transaction, and not while an online migration or a rebalance moves the table. An entry is
 * keyed by table, ring, method, SQL and bindings. A read that pins shard keys depends on those
 * keys; any other on the whole table.
 *
 * A miss is read from the primaries, whose positions known before the read go with the entry:
 * an entry is never older than it says, and a read-your-writes session or a token reads it only
 * if it reached their positions. A replica read's `maxLagMs` bounds an entry's age too.
 *
 * Writes through the kit move what they touched after they end (committed, failed or of unknown
 * outcome alike), inside kit.transaction() after the transaction ends. With the shared level
 * (Redis) they also move its versions before they run and after they end, and tell the other
 * instances; that is done for tables whose config has `cache` (every instance knows them) and
 * those this process cached. Writes past the kit (kit.forKey(), kit.forShard(), other programs)
 * are seen once an entry's TTL runs out.
 */
import { randomUUID } from 'node:crypto';
import type { CachePolicy, CachedRead, ReadCache } from '../cache/read-cache.js';
import type { InvalidationMessage, RedisTier, TierListener } from '../cache/redis-tier.js';
import type { ResolvedConfig, TableCacheOptions } from '../config/config-types.js';
import type { RoutingOptions } from '../engine/shard-access.js';
import type { AnyQueryBuilder } from '../knex/builder-internals.js';
import { type RoutingRules, pinnedKeyIdentities } from '../planner/plan-query.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { tablesOf } from '../planner/sql-parser.js';
import { encodeTagged } from '../cache/tagged-json.js';
import { PRIMARY_ONLY } from '../replicas/read-session.js';

const DEFAULT_JITTER = 0.1;

/**
 * How long Redis keeps the version of a written key. An entry must never outlive the versions it
 * was filled under (a version that expired would read as never written), so an entry's TTL plus
 * its stale-if-error window is capped at half of it.
 */
export const VERSION_TTL_MS = 2 * 24 * 3600_000;
const LONGEST_ENTRY_MS = VERSION_TTL_MS / 2;

/** Per query: `false` reads past the cache; a policy caches this read (and writes to its table invalidate). */
export type QueryCacheOption = false | TableCacheOptions;

export interface CachedReadsParts {
  config: ResolvedConfig;
  rules: RoutingRules;
  cache: ReadCache;
  /** The version of the topology record in use (a rebalance's switch moves it), alike on every instance. */
  topologyVersion(): number;
  primaryPosition(shard: string): string | undefined;
  reached(shard: string, position: string, target: string): boolean;
  /** True while an online migration or a rebalance moves the table. */
  moving(table: string): boolean;
  /** The shared level, when configured. */
  shared?: RedisTier;
}

/** A write as the cache tracks it, from before it runs to after it ended. */
export interface WriteMark {
  builder: AnyQueryBuilder;
  plan: QueryPlan;
  /** Shard-key identities it touches (undefined: the whole table), once asked. */
  keys?: string[] | undefined;
  /** With the shared level: the write's id among those in progress. Undefined: the shared level is not told. */
  sharedId?: string;
  /** With the shared level: Redis being told that the write begins; the write waits for it. */
  announced?: Promise<void>;
}

export class CachedReads {
  /** Tables a read was cached for: only writes to them move versions. */
  private readonly cachedTables = new Set<string>();

  constructor(private readonly parts: CachedReadsParts) {}

  /** The cache's view of a routed read, or undefined when it goes to the database uncached. */
  readOf(builder: AnyQueryBuilder, plan: QueryPlan, option: QueryCacheOption | undefined, routing: RoutingOptions): CachedRead | undefined {
    const policy = this.policyOf(plan.table, option);
    if (!policy || plan.lookupJoin || plan.inline || plan.route.kind === 'none' || this.parts.moving(plan.table)) return undefined;
    const compiled = (builder as unknown as { toSQL(): { sql: string; bindings: readonly unknown[]; options?: object; toNative(): { sql: string } } }).toSQL();
    const { sql, bindings } = compiled;
    // Read with the SQL parser, in the driver's placeholders; SQL it cannot read is not cached.
    const named = tablesOf(this.parts.config.family, compiled.toNative().sql);
    if (!named?.every((entry) => entry.table === plan.table)) return undefined;
    const required = this.requiredPositions(plan, routing);
    if (required === null) return undefined;
    this.cachedTables.add(plan.table);
    const keys = this.parts.rules.tables.has(plan.table) ? pinnedKeyIdentities(builder, this.parts.rules) : undefined;
    return {
      key: [plan.table, this.parts.topologyVersion(), plan.method, sql, encodeTagged(bindings), compiled.options === undefined ? '' : JSON.stringify(compiled.options)].join('\u0000'),
      dependency: keys ? { table: plan.table, keys } : { table: plan.table },
      policy,
      ...(required.size > 0 ? { required } : {}),
      ...(routing.read.from === 'replica' ? { maxAgeMs: routing.read.maxLagMs } : {}),
      deadline: routing.deadline,
    };
  }

  /** What the primaries of the plan's shards were known to have reached, before a fill reads them. */
  positionsBefore(plan: QueryPlan): Map<string, string> {
    const positions = new Map<string, string>();
    for (const shard of targetShards(plan.route)) {
      const position = this.parts.primaryPosition(shard);
      if (position !== undefined) positions.set(shard, position);
    }
    return positions;
  }

  /**
   * Before a routed write runs. With the shared level (for tables any instance caches), Redis is
   * told first: the caller awaits `announced`. Without it nothing waits, so a write of a table no
   * cache reads costs no more than it did.
   */
  beforeWrite(builder: AnyQueryBuilder, plan: QueryPlan): WriteMark {
    const mark: WriteMark = { builder, plan };
    const { shared } = this.parts;
    if (shared && (this.cachedTables.has(plan.table) || this.parts.config.tables.get(plan.table)?.cache !== undefined)) {
      mark.keys = this.keysOf(mark);
      mark.sharedId = randomUUID();
      mark.announced = shared.beforeWrite(plan.table, mark.keys, mark.sharedId);
    }
    return mark;
  }

  /** After a routed write ended: moves the versions of the keys (or the table) it touched, here and in the shared level. */
  wrote(mark: WriteMark): void {
    const { table } = mark.plan;
    // Decided now, not when the write began: a first cached read of the table may have started meanwhile.
    if (this.cachedTables.has(table)) {
      const keys = 'keys' in mark ? mark.keys : this.keysOf(mark);
      if (keys) this.parts.cache.versions.wroteKeys(table, keys);
      else this.parts.cache.versions.wroteTable(table);
    }
    // Not awaited: this process's next shared read waits for it (RedisTier.settled), others learn it by message.
    if (mark.sharedId !== undefined) void this.parts.shared?.afterWrite(table, mark.keys, mark.sharedId);
  }

  private keysOf(mark: WriteMark): string[] | undefined {
    return this.parts.rules.tables.has(mark.plan.table) ? pinnedKeyIdentities(mark.builder, this.parts.rules) : undefined;
  }

  private policyOf(table: string, option: QueryCacheOption | undefined): CachePolicy | undefined {
    if (option === false) return undefined;
    const chosen = option ?? this.parts.config.tables.get(table)?.cache;
    if (!chosen) return undefined;
    const ttlMs = Math.min(chosen.ttlMs, LONGEST_ENTRY_MS);
    return { ttlMs, jitter: chosen.jitter ?? DEFAULT_JITTER, staleIfErrorMs: Math.min(chosen.staleIfErrorMs ?? 0, LONGEST_ENTRY_MS - ttlMs) };
  }

  /** Per shard the position the read must see (session and token, the furthest); null when only a primary may answer. */
  private requiredPositions(plan: QueryPlan, routing: RoutingOptions): Map<string, string> | null {
    const required = new Map<string, string>();
    for (const shard of targetShards(plan.route)) {
      for (const position of [routing.session?.positionFor(shard), routing.after?.positionFor(shard)]) {
        if (position === undefined) continue;
        if (position === PRIMARY_ONLY) return null;
        const current = required.get(shard);
        if (current === undefined || !this.parts.reached(shard, current, position)) required.set(shard, position);
      }
    }
    return required;
  }
}

/**
 * What the shared level tells the read cache, relayed: the tier is opened (and may already be
 * listening) before the cache it serves exists.
 */
export class SharedCacheRelay implements TierListener {
  private cache: ReadCache | undefined;

  /** From now on `cache` hears the tier; it trusts its L1 at once if the tier is listening already. */
  serve(cache: ReadCache, tier: RedisTier): void {
    this.cache = cache;
    if (tier.subscribed) cache.trustLocal();
  }

  invalidated(message: InvalidationMessage): void {
    this.cache?.invalidated(message);
  }

  deaf(): void {
    this.cache?.distrustLocal();
  }

  listening(): void {
    this.cache?.trustLocal();
  }
}
