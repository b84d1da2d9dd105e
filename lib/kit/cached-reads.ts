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
 * outcome alike), inside kit.transaction() after the transaction ends. Writes past the kit
 * (kit.forKey(), kit.forShard(), other programs) and other processes' writes are seen once an
 * entry's TTL runs out.
 */
import { LRUCache } from 'lru-cache';
import type { CachePolicy, CachedRead, ReadCache } from '../cache/read-cache.js';
import type { ResolvedConfig, TableCacheOptions } from '../config/config-types.js';
import type { RoutingOptions } from '../engine/shard-access.js';
import type { AnyQueryBuilder } from '../knex/builder-internals.js';
import { type RoutingRules, pinnedKeyIdentities } from '../planner/plan-query.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { parserDatabase, parserFor } from '../planner/sql-parser.js';
import { PRIMARY_ONLY } from '../replicas/read-session.js';

const DEFAULT_JITTER = 0.1;

/** Per query: `false` reads past the cache; a policy caches this read (and writes to its table invalidate). */
export type QueryCacheOption = false | TableCacheOptions;

export interface CachedReadsParts {
  config: ResolvedConfig;
  rules: RoutingRules;
  cache: ReadCache;
  /** The ring that places keys now (a rebalance switches it). */
  ring(): object;
  primaryPosition(shard: string): string | undefined;
  reached(shard: string, position: string, target: string): boolean;
  /** True while an online migration or a rebalance moves the table. */
  moving(table: string): boolean;
}

export class CachedReads {
  /** Tables a read was cached for: only writes to them move versions. */
  private readonly cachedTables = new Set<string>();
  /** A number per ring, for entry keys: a rebalance's switch retires the entries of the ring before. */
  private readonly ringIds = new WeakMap<object, number>();
  private ringCount = 0;
  /** The tables a SQL text names, by text (an application repeats a few shapes). */
  private readonly tablesNamed = new LRUCache<string, { tables: readonly string[] | null }>({ max: 2000 });

  constructor(private readonly parts: CachedReadsParts) {}

  /** The cache's view of a routed read, or undefined when it goes to the database uncached. */
  readOf(builder: AnyQueryBuilder, plan: QueryPlan, option: QueryCacheOption | undefined, routing: RoutingOptions): CachedRead | undefined {
    const policy = this.policyOf(plan.table, option);
    if (!policy || plan.lookupJoin || plan.inline || plan.route.kind === 'none' || this.parts.moving(plan.table)) return undefined;
    const compiled = (builder as unknown as { toSQL(): { sql: string; bindings: readonly unknown[]; toNative(): { sql: string } } }).toSQL();
    const { sql, bindings } = compiled;
    if (!this.readsOnly(plan.table, sql, () => compiled.toNative().sql)) return undefined;
    const required = this.requiredPositions(plan, routing);
    if (required === null) return undefined;
    this.cachedTables.add(plan.table);
    const keys = this.parts.rules.tables.has(plan.table) ? pinnedKeyIdentities(builder, this.parts.rules) : undefined;
    return {
      key: [plan.table, this.ringId(), plan.method, sql, bindingsText(bindings)].join('\u0000'),
      dependency: keys ? { table: plan.table, keys } : { table: plan.table },
      policy,
      ...(required.size > 0 ? { required } : {}),
      ...(routing.read.from === 'replica' ? { maxAgeMs: routing.read.maxLagMs } : {}),
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

  /** After a routed write ended: moves the versions of the keys (or the table) it touched. */
  wrote(builder: AnyQueryBuilder, plan: QueryPlan): void {
    if (!this.cachedTables.has(plan.table)) return;
    const { versions } = this.parts.cache;
    const keys = this.parts.rules.tables.has(plan.table) ? pinnedKeyIdentities(builder, this.parts.rules) : undefined;
    if (keys) versions.wroteKeys(plan.table, keys);
    else versions.wroteTable(plan.table);
  }

  private ringId(): number {
    const ring = this.parts.ring();
    let id = this.ringIds.get(ring);
    if (id === undefined) {
      id = ++this.ringCount;
      this.ringIds.set(ring, id);
    }
    return id;
  }

  private policyOf(table: string, option: QueryCacheOption | undefined): CachePolicy | undefined {
    if (option === false) return undefined;
    const chosen = option ?? this.parts.config.tables.get(table)?.cache;
    if (!chosen) return undefined;
    return { ttlMs: chosen.ttlMs, jitter: chosen.jitter ?? DEFAULT_JITTER, staleIfErrorMs: chosen.staleIfErrorMs ?? 0 };
  }

  /** True when `sql` reads `table` and no other (read with the SQL parser, in the driver's placeholders; unreadable SQL is not cached). */
  private readsOnly(table: string, sql: string, nativeSql: () => string): boolean {
    let named = this.tablesNamed.get(sql);
    if (!named) {
      named = { tables: tablesIn(this.parts.config.family, nativeSql()) };
      this.tablesNamed.set(sql, named);
    }
    return named.tables?.every((name) => name === table) === true;
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

function tablesIn(family: ResolvedConfig['family'], sql: string): string[] | null {
  try {
    const listed = parserFor(family).tableList(sql.replace(/\$(\d+)/g, ':p$1'), { database: parserDatabase(family) });
    return listed.map((entry) => entry.split('::')[2] ?? '');
  } catch {
    return null;
  }
}

/** Bindings as text for the entry's key: bigints, Dates and bytes spelled apart from strings. */
function bindingsText(bindings: readonly unknown[]): string {
  return JSON.stringify(bindings, function (this: Record<string, unknown>, key, value: unknown) {
    // The holder's own value: JSON.stringify has already turned a Date or a Buffer into its toJSON().
    const original = this[key];
    if (typeof original === 'bigint') return { bigint: String(original) };
    if (original instanceof Date) return { date: original.getTime() };
    if (original instanceof Uint8Array) return { bytes: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('hex') };
    return value;
  });
}
