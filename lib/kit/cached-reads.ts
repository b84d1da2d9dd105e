/**
 * The read cache on the routed path (cache/read-cache.ts does the caching); this decides which
 * reads it may answer, what identifies them, and what each routed write moves.
 *
 * Cached: selects (rows, first, pluck, aggregates) through kit.table() on a table whose config
 * (`tables.<name>.cache`) or the query (`kit.table(name, { cache })`) asks for it, that read that
 * table alone (a join or a subquery would depend on writes to another table), outside a
 * transaction, and not while an online migration or a rebalance moves the table. An entry is
 * keyed by table, ring and the builder's fingerprint (its statements' shape and values), or,
 * for a builder holding raw SQL or subqueries, by method, SQL, bindings and options; a hit by
 * fingerprint is answered before planning (knownRead). A read that pins shard keys depends on those
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
import { LRUCache } from 'lru-cache';
import type { CacheDependency } from '../cache/cache-versions.js';
import type { CachePolicy, CachedRead, ReadCache } from '../cache/read-cache.js';
import type { InvalidationMessage, RedisTier, TierListener } from '../cache/redis-tier.js';
import type { ResolvedConfig, TableCacheOptions } from '../config/config-types.js';
import type { RoutingOptions } from '../engine/shard-access.js';
import { type AnyQueryBuilder, internalsOf } from '../knex/builder-internals.js';
import { type RoutingRules, keyIdentity, ownerOfKey, pinnedKeyIdentities } from '../planner/plan-query.js';
import { type KeyList, keyListOf, keyListStatement } from '../knex/key-list.js';
import { columnSpellings, parseTableRef } from '../planner/query-shape.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { tablesOf } from '../planner/sql-parser.js';
import { encodeTagged } from '../cache/tagged-json.js';
import { PRIMARY_ONLY } from '../replicas/read-session.js';
import type { ReadPreference } from '../replicas/read-router.js';
import { fingerprintOf } from '../knex/builder-fingerprint.js';

const DEFAULT_JITTER = 0.1;
/** Fingerprinted reads whose dependencies are remembered. */
const KNOWN_READS = 10_000;
const KNOWN_READS_BYTES = 16 * 1024 * 1024;

/**
 * How long Redis keeps the version of a written key. An entry must never outlive the versions it
 * was filled under (a version that expired would read as never written), so an entry's TTL plus
 * its stale-if-error or stale-while-revalidate window is capped at half of it.
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

/** One key of a select of several keys, as its own cached read. */
export interface KeyRead {
  value: unknown;
  identity: string;
  shard: string;
  read: CachedRead;
}

export interface KeyReads {
  list: KeyList;
  shardKey: string;
  /** In the order of the key list; one per key identity. */
  reads: KeyRead[];
}

/** A read before planning (CachedReads.knownRead); with `dependency` it can be answered and filled unplanned. */
export interface KnownRead {
  key: string;
  policy: CachePolicy;
  dependency?: CacheDependency;
  maxAgeMs?: number;
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
  /** What the reads of each fingerprinted entry key depend on (the same for every read of it), learned by readOf(). */
  private readonly dependencies = new LRUCache<string, CacheDependency>({ max: KNOWN_READS, maxSize: KNOWN_READS_BYTES, sizeCalculation: (dependency, key) => 2 * key.length + 64 * (dependency.keys?.length ?? 1) });

  constructor(private readonly parts: CachedReadsParts) {}

  /** The cache's view of a routed read, or undefined when it goes to the database uncached. */
  readOf(builder: AnyQueryBuilder, plan: QueryPlan, option: QueryCacheOption | undefined, routing: RoutingOptions): CachedRead | undefined {
    const policy = this.policyOf(plan.table, option);
    if (!policy || plan.lookupJoin || plan.inline || plan.route.kind === 'none' || this.parts.moving(plan.table)) return undefined;
    const compiled = (builder as unknown as { toSQL(): { sql: string; bindings: readonly unknown[]; options?: object; toNative(): { sql: string } } }).toSQL();
    // Read with the SQL parser, in the driver's placeholders; SQL it cannot read is not cached.
    const named = tablesOf(this.parts.config.family, compiled.toNative().sql);
    if (!named?.every((entry) => entry.table === plan.table)) return undefined;
    const required = this.requiredPositions(plan, routing);
    if (required === null) return undefined;
    this.cachedTables.add(plan.table);
    const keys = this.parts.rules.tables.has(plan.table) ? pinnedKeyIdentities(builder, this.parts.rules) : undefined;
    const fingerprint = fingerprintOf(builder);
    const dependency: CacheDependency = keys ? { table: plan.table, keys } : { table: plan.table };
    const key =
      fingerprint === undefined
        ? this.entryKey(plan.table, 'sql', plan.method, compiled.sql, encodeTagged(compiled.bindings), compiled.options === undefined ? '' : JSON.stringify(compiled.options))
        : this.entryKey(plan.table, 'shape', fingerprint);
    if (fingerprint !== undefined) this.dependencies.set(key, dependency);
    return {
      key,
      dependency,
      policy,
      ...(required.size > 0 ? { required } : {}),
      ...(routing.read.from === 'replica' ? { maxAgeMs: routing.read.maxLagMs } : {}),
      deadline: routing.deadline,
    };
  }

  /**
   * A routed read as the cache knows it before it is planned, when the builder fingerprints
   * (knex/builder-fingerprint.ts): its entry key and policy, and, once readOf() has seen the
   * fingerprint, what it depends on, so that even an L2 read or a miss need not plan first.
   * Undefined sends the read the whole way; so do reads that must see positions (a session or
   * token that recorded any): which positions apply needs the plan.
   */
  knownRead(builder: AnyQueryBuilder, table: string, option: QueryCacheOption | undefined, read: ReadPreference, anyPositions: boolean): KnownRead | undefined {
    const policy = anyPositions ? undefined : this.policyOf(table, option);
    if (!policy || this.parts.moving(table)) return undefined;
    const fingerprint = fingerprintOf(builder);
    if (fingerprint === undefined) return undefined;
    const key = this.entryKey(table, 'shape', fingerprint);
    const dependency = this.dependencies.get(key);
    return { key, policy, ...(dependency ? { dependency } : {}), ...(read.from === 'replica' ? { maxAgeMs: read.maxLagMs } : {}) };
  }

  /** Entries of a ring's topology only: a rebalance's switch retires older ones. */
  private entryKey(table: string, ...parts: string[]): string {
    return `${table}\u0000${this.parts.topologyVersion()}\u0000${parts.join('\u0000')}`;
  }

  /**
   * A select of several shard keys that splits by key (knex/key-list.ts), as one cached read per
   * key: each depends on its key alone and is keyed by the fingerprint of the select asking for
   * that key only. Undefined when the select is not cached or does not split.
   */
  keyReadsOf(builder: AnyQueryBuilder, plan: QueryPlan, option: QueryCacheOption | undefined, routing: RoutingOptions): KeyReads | undefined {
    const policy = this.policyOf(plan.table, option);
    const shardKey = this.parts.config.tables.get(plan.table)?.shardKey;
    const table = internalsOf(builder)._single.table;
    if (!policy || !shardKey || typeof table !== 'string' || (plan.route.kind !== 'one' && plan.route.kind !== 'some')) return undefined;
    if (plan.lookupJoin || plan.inline || this.parts.moving(plan.table)) return undefined;
    const ref = parseTableRef(table);
    const list = keyListOf(builder, shardKey, columnSpellings(ref, shardKey), ref.qualifier);
    if (!list || fingerprintOf(builder) === undefined) return undefined;
    const { rules } = this.parts;
    const reads = new Map<string, KeyRead>();
    // Keys the other conditions exclude still get a read each: its select finds no row.
    for (const value of list.values) {
      if (value === null) continue;
      const identity = keyIdentity(rules, plan.table, value);
      if (reads.has(identity)) continue;
      const shard = ownerOfKey(rules, plan.table, value);
      const required = this.requiredPositions({ ...plan, route: { kind: 'one', shard } }, routing);
      if (required === null) return undefined;
      // Keyed by the key's identity, not the caller's spelling of it ('2' and 2 are one entry).
      const fingerprint = fingerprintOf(builder, { index: list.index, statement: keyListStatement(list, [identity]) })!;
      reads.set(identity, {
        value,
        identity,
        shard,
        read: {
          key: this.entryKey(plan.table, 'key', fingerprint),
          dependency: { table: plan.table, keys: [identity] },
          policy,
          ...(required.size > 0 ? { required } : {}),
          ...(routing.read.from === 'replica' ? { maxAgeMs: routing.read.maxLagMs } : {}),
          deadline: routing.deadline,
        },
      });
    }
    this.cachedTables.add(plan.table);
    return { list, shardKey, reads: [...reads.values()] };
  }

  /** What the primaries of these shards were known to have reached, before a fill reads them. */
  positionsBefore(shards: readonly string[]): Map<string, string> {
    const positions = new Map<string, string>();
    for (const shard of shards) {
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
    const longestPastTtl = LONGEST_ENTRY_MS - ttlMs;
    return {
      ttlMs,
      jitter: chosen.jitter ?? DEFAULT_JITTER,
      staleIfErrorMs: Math.min(chosen.staleIfErrorMs ?? 0, longestPastTtl),
      staleWhileRevalidateMs: Math.min(chosen.staleWhileRevalidateMs ?? 0, longestPastTtl),
    };
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
