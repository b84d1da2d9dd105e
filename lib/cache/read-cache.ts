/**
 * The cache of routed reads: in this process (L1: lru-cache, bounded by entries and bytes) and,
 * when configured, shared by every instance (L2: redis-tier.ts), with
 *
 *   - invalidation by version (cache-versions.ts): an L1 entry is served only while nothing it
 *     read was written through the kit since its fill began, so a fill that raced a write is
 *     never served, and one that finishes after the write is not even stored (`refusedFills`);
 *     L2 entries are judged by the versions every instance moves in Redis;
 *   - single flight: concurrent misses of one entry make one read. A waiter uses its answer only
 *     if nothing it depends on moved since that read began (with L2, as Redis says: another
 *     instance's write is known there before its commit); otherwise, or if the read failed for
 *     its own caller's reasons (deadline, cancel), it reads itself, within its own deadline;
 *   - among instances that miss together, one takes the entry's lock and reads the database while
 *     the others wait up to `lockWaitMs` for its entry, then read themselves;
 *   - TTLs with jitter, so entries filled together do not expire together;
 *   - read-your-writes: an entry carries the positions (LSN / GTID) its shards were known to have
 *     reached before it was read; a read that must see a position it does not reach skips it;
 *   - stale-while-revalidate (opt-in): an expired entry within `staleWhileRevalidateMs` that no
 *     write ended answers at once while one read refreshes it (across instances, the holder of
 *     the entry's lock);
 *   - stale-if-error (opt-in, from L1): while the read fails with a retryable error (breaker
 *     open, node shedding, deadline), an expired entry no write has invalidated is served, within
 *     `staleIfErrorMs` past its TTL, and counted.
 *   - stale while degraded (from L1): a read that carries `staleMs` (the kit's degradation
 *     level, for non-critical callers) is answered by an expired entry no write has invalidated,
 *     within `staleMs` past its TTL, without a read; entries are kept `keepPastTtlMs` past their
 *     TTL for it.
 *
 * With L2, L1 holds only what L2 accepted (or answered), and is not used while the instance may
 * miss invalidations (its subscription is down: `distrustLocal`). Values are copied in and out,
 * so that a caller changing its rows changes neither the entry nor another caller's rows.
 */
import { LRUCache } from 'lru-cache';
import { QueryCancelledError, QueryTimeoutError, ShardKitError } from '../errors.js';
import { type CacheDependency, CacheVersions } from './cache-versions.js';
import type { LockOutcome, SharedEntry, Snapshot } from './redis-tier.js';
import { copyResult, sizeOfResult } from './result-copy.js';

export interface CacheLimits {
  maxEntries: number;
  maxBytes: number;
  /** How long past its TTL an L1 entry is kept for degraded reads (`staleMs`). Default 0. */
  keepPastTtlMs?: number;
}

export interface CachePolicy {
  ttlMs: number;
  /** Share of the TTL taken off at random (0..1). */
  jitter: number;
  /** How long past its TTL an entry may still answer a read that fails with a retryable error (0: never). */
  staleIfErrorMs: number;
  /** How long past its TTL an entry answers at once while one read refreshes it (0: never). */
  staleWhileRevalidateMs: number;
}

/** One read, as the cache sees it. */
export interface CachedRead {
  /** What identifies the answer: table, topology and the builder's fingerprint (or SQL, bindings and options). */
  key: string;
  dependency: CacheDependency;
  policy: CachePolicy;
  /** Positions the answer must include, per shard; undefined: any. */
  required?: ReadonlyMap<string, string>;
  /** How old an entry may be (a replica read's `maxLagMs`); undefined: up to its TTL. */
  maxAgeMs?: number;
  /** The caller's deadline (performance.now()): waiting for another's read stops there. */
  deadline?: number;
  /** Degraded: an expired L1 entry no write ended answers within this long past its TTL, without a read. */
  staleMs?: number;
}

/** Where the answer of a fill comes from, and what it was known to include before it ran. */
export interface Fill {
  read(): Promise<unknown>;
  /** Positions the shards read were known to have reached before the read; undefined where unknown. */
  positions: ReadonlyMap<string, string>;
}

/** The shared level as the read cache uses it (redis-tier.ts); each call answers undefined when Redis cannot be asked. */
export interface SharedLevel {
  settled(): Promise<void>;
  read(key: string, dependency: CacheDependency): Promise<{ entry: SharedEntry | undefined; snapshot: Snapshot } | undefined>;
  store(key: string, entry: SharedEntry, ttlMs: number, dependency: CacheDependency, snapshot: Snapshot): Promise<boolean | undefined>;
  /** True when nothing the snapshot names moved and no write to the table is in progress. */
  unchanged(dependency: CacheDependency, snapshot: Snapshot): Promise<boolean | undefined>;
  lock(key: string): Promise<LockOutcome>;
  unlock(key: string, token: string): Promise<void>;
}

export interface SharedOptions {
  level: SharedLevel;
  /** How long an instance that did not get an entry's lock waits for the holder's entry. */
  lockWaitMs: number;
  /** False: no entries in this process, every read asks L2. */
  keepLocal: boolean;
}

export type CacheOutcome = 'hit' | 'miss' | 'coalesced' | 'stale';

export interface CacheStats {
  hits: number;
  /** Misses of this process answered by the shared level. */
  sharedHits: number;
  /** Misses that waited for another instance's fill (it held the entry's lock). */
  lockWaits: number;
  misses: number;
  coalesced: number;
  staleServed: number;
  refusedFills: number;
  entries: number;
  bytes: number;
}

interface Entry {
  value: unknown;
  since: number;
  filledAt: number;
  expiresAt: number;
  positions: ReadonlyMap<string, string>;
  dependency: CacheDependency;
}

/** A miss's answer, the entry it makes (times, positions), and the L2 versions it is valid under. */
interface Filled {
  value: unknown;
  entry: SharedEntry;
  /** Undefined without L2, or when Redis could not be asked. */
  snapshot?: Snapshot;
  /** Whether L1 may keep it: without L2 always; with L2 only what L2 answered or accepted. */
  keepable: boolean;
  /** An expired L2 entry, answered while another instance refreshes it (not a refused fill). */
  stale?: true;
}

interface Flight {
  since: number;
  answer: Promise<Filled>;
}

/** How often an instance waiting for another's fill looks for its entry. */
const LOCK_POLL_MS = 15;

export class ReadCache {
  readonly versions = new CacheVersions();
  private readonly entries: LRUCache<string, Entry>;
  private readonly keepPastTtlMs: number;
  private readonly flights = new Map<string, Flight>();
  private readonly counts = { hits: 0, sharedHits: 0, lockWaits: 0, misses: 0, coalesced: 0, staleServed: 0, refusedFills: 0 };
  /** False while invalidations from other instances may be missed (see distrustLocal). */
  private localTrusted: boolean;

  constructor(
    limits: CacheLimits,
    /** Orders positions of one shard: true when `position` includes everything up to `target`. */
    private readonly reached: (shard: string, position: string, target: string) => boolean,
    private readonly clock: () => number = Date.now,
    private readonly shared?: SharedOptions,
  ) {
    this.keepPastTtlMs = limits.keepPastTtlMs ?? 0;
    this.entries = new LRUCache<string, Entry>({ max: limits.maxEntries, maxSize: limits.maxBytes, sizeCalculation: (entry) => Math.max(1, sizeOfResult(entry.value)) });
    // With L2, L1 is used once the subscription that brings other instances' invalidations is up.
    this.localTrusted = shared === undefined;
  }

  get stats(): CacheStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.entries.calculatedSize };
  }

  /** The answer of `read`: from an entry, from a read in flight, or from `fill`; `outcome` says which. */
  async answer(read: CachedRead, fill: () => Fill, outcome?: (what: CacheOutcome) => void): Promise<unknown> {
    const entry = this.localUsable ? this.entries.get(read.key) : undefined;
    if (entry && this.servesNow(entry, read)) {
      this.counts.hits++;
      outcome?.('hit');
      return copyResult(entry.value);
    }
    if (entry && this.servesDegraded(entry, read)) {
      this.counts.staleServed++;
      outcome?.('stale');
      return copyResult(entry.value);
    }
    const flight = this.flights.get(read.key);
    if (entry && this.servesWhileRevalidating(entry, read)) {
      if (!flight) this.refresh(read, fill, entry);
      this.counts.staleServed++;
      outcome?.('stale');
      return copyResult(entry.value);
    }
    if (flight) {
      const joined = await this.join(flight, read);
      if ('failure' in joined) {
        // Failed for its own caller's reasons: this caller reads itself. Otherwise it fails alike (or is answered stale).
        if (!(joined.failure instanceof QueryTimeoutError || joined.failure instanceof QueryCancelledError)) return this.staleOrThrow(read, entry, joined.failure, outcome);
      } else if (joined.filled && (await this.stillValid(joined.filled, flight.since, read))) {
        this.counts.coalesced++;
        outcome?.('coalesced');
        return copyResult(joined.filled.value);
      }
    }
    return this.fill(read, fill(), entry, outcome);
  }

  /**
   * An L1 entry's answer, when one serves a read that needs no positions and is bounded by
   * `maxAgeMs` (if set); undefined otherwise. Synchronous: the routed path's fast hit.
   */
  localAnswer(key: string, maxAgeMs: number | undefined): { value: unknown } | undefined {
    const entry = this.localUsable ? this.entries.get(key) : undefined;
    if (!entry || !this.servesNow(entry, { dependency: entry.dependency, ...(maxAgeMs === undefined ? {} : { maxAgeMs }) })) return undefined;
    this.counts.hits++;
    return { value: copyResult(entry.value) };
  }

  /**
   * Stale-while-revalidate's one refresh of an entry. A retryable failure leaves the entry to
   * answer within its window; any other (a column dropped, a permission taken away) ends it, so
   * that the next read reads itself and gets the error: such errors are never hidden.
   */
  private refresh(read: CachedRead, fill: () => Fill, entry: Entry): void {
    const failed = (error: unknown) => {
      if (!(error instanceof ShardKitError && error.retryable) && this.entries.get(read.key) === entry) this.entries.delete(read.key);
    };
    try {
      this.fill(read, fill(), entry).catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  /** Another instance's write (or flush), told through the shared level: the entries it touched are not served again. */
  invalidated(message: { table?: string; keys?: string[]; all?: boolean }): void {
    if (message.all || message.table === undefined) this.flush();
    else if (message.keys) this.versions.wroteKeys(message.table, message.keys);
    else this.versions.wroteTable(message.table);
  }

  /** Drops every entry, or those of one table. */
  flush(table?: string): void {
    // Versions first, so that a fill in flight does not store what it read before the flush.
    if (table === undefined) {
      this.versions.wroteEverything();
      this.entries.clear();
      return;
    }
    this.versions.wroteTable(table);
    for (const [key, entry] of this.entries.entries()) if (entry.dependency.table === table) this.entries.delete(key);
  }

  /** Invalidations may be missed from now on (the subscription dropped): L1 is emptied and not used. */
  distrustLocal(): void {
    this.localTrusted = false;
    this.flush();
  }

  /** Invalidations arrive again: L1 starts empty. */
  trustLocal(): void {
    this.flush();
    this.localTrusted = this.shared?.keepLocal !== false;
  }

  private get localUsable(): boolean {
    return this.localTrusted && this.shared?.keepLocal !== false;
  }

  /** The flight's answer, or its failure, or nothing once the caller's deadline passed. */
  private async join(flight: Flight, read: CachedRead): Promise<{ filled?: Filled } | { failure: unknown }> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = read.deadline === undefined ? undefined : new Promise<{ filled?: Filled }>((resolve) => (timer = setTimeout(() => resolve({}), Math.max(0, read.deadline! - performance.now()))));
    try {
      const answer = flight.answer.then(
        (filled) => ({ filled }),
        (failure: unknown) => ({ failure }),
      );
      return await (deadline ? Promise.race([answer, deadline]) : answer);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether another read's answer may answer `read`: its positions, and nothing moved since it began. */
  private async stillValid(filled: Filled, since: number, read: CachedRead): Promise<boolean> {
    if (!this.satisfies(new Map(filled.entry.positions), read.required) || !this.versions.unchangedSince(read.dependency, since)) return false;
    const shared = this.shared?.level;
    if (!shared || filled.snapshot === undefined) return true;
    // Another instance's write is in Redis before it commits; its message here may come later. While
    // Redis cannot be asked, this process's own knowledge decides (nothing better exists then), so
    // that waiters do not all read the database.
    return (await shared.unchanged(read.dependency, filled.snapshot)) !== false;
  }

  private async fill(read: CachedRead, fill: Fill, previous: Entry | undefined, outcome?: (what: CacheOutcome) => void): Promise<unknown> {
    const since = this.versions.now();
    this.counts.misses++;
    outcome?.('miss');
    const answer = this.answerOfMiss(read, fill);
    const flight: Flight = { since, answer };
    this.flights.set(read.key, flight);
    let filled: Filled;
    try {
      filled = await answer;
    } catch (error) {
      return this.staleOrThrow(read, previous, error, outcome);
    } finally {
      if (this.flights.get(read.key) === flight) this.flights.delete(read.key);
    }
    if (filled.stale) return filled.value;
    if (!this.versions.unchangedSince(read.dependency, since) || !filled.keepable) {
      this.counts.refusedFills++;
      return filled.value;
    }
    if (this.localUsable) {
      const { entry } = filled;
      this.entries.set(
        read.key,
        { value: copyResult(filled.value), since, filledAt: entry.filledAt, expiresAt: entry.expiresAt, positions: new Map(entry.positions), dependency: read.dependency },
        // Kept past its TTL only to answer a failing read (stale-if-error), while it is refreshed (stale-while-revalidate), or for degraded reads.
        { ttl: Math.max(1, Math.ceil(entry.expiresAt - this.clock() + Math.max(pastTtl(read.policy), this.keepPastTtlMs))) },
      );
    }
    return filled.value;
  }

  /** A miss of this process: from the shared level when it holds the entry, else from the database (and stored there). */
  private async answerOfMiss(read: CachedRead, fill: Fill): Promise<Filled> {
    const fresh = (value: unknown): SharedEntry => {
      const filledAt = this.clock();
      return { value, positions: [...fill.positions], filledAt, expiresAt: filledAt + read.policy.ttlMs * (1 - read.policy.jitter * Math.random()) };
    };
    const shared = this.shared?.level;
    if (!shared) return { value: await fill.read(), entry: fresh(undefined), keepable: true };
    // This process's own writes reach Redis first, so that what it finds there is not older than them.
    await shared.settled();
    const found = await shared.read(read.key, read.dependency);
    const hit = this.sharedAnswer(found, read);
    if (hit) return hit;
    const lock = found ? await shared.lock(read.key) : undefined;
    const previous = lock?.held ? this.revalidating(found, read) : undefined;
    if (previous) return previous;
    if (lock?.held) {
      this.counts.lockWaits++;
      const waitUntil = Math.min(performance.now() + (this.shared?.lockWaitMs ?? 0), read.deadline ?? Number.POSITIVE_INFINITY);
      while (performance.now() < waitUntil) {
        await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
        const filledElsewhere = this.sharedAnswer(await shared.read(read.key, read.dependency), read);
        if (filledElsewhere) return filledElsewhere;
      }
    }
    try {
      const value = await fill.read();
      const entry = fresh(value);
      const stored = found ? await shared.store(read.key, entry, entry.expiresAt - entry.filledAt + pastTtl(read.policy), read.dependency, found.snapshot) : undefined;
      return { value, entry, ...(found ? { snapshot: found.snapshot } : {}), keepable: stored === true };
    } finally {
      if (lock?.token !== undefined) void shared.unlock(read.key, lock.token);
    }
  }

  /** An L2 entry that may answer `read` now, as a fill's answer; undefined if none. */
  private sharedAnswer(found: { entry: SharedEntry | undefined; snapshot: Snapshot } | undefined, read: CachedRead): Filled | undefined {
    const entry = found?.entry;
    if (!entry || !found) return undefined;
    const now = this.clock();
    if (now >= entry.expiresAt || !this.fresh(entry.filledAt, new Map(entry.positions), read, now)) return undefined;
    this.counts.sharedHits++;
    return { value: entry.value, entry, snapshot: found.snapshot, keepable: true };
  }

  /** Another instance holds the entry's lock: its expired entry, if stale-while-revalidate allows, answers meanwhile. */
  private revalidating(found: { entry: SharedEntry | undefined; snapshot: Snapshot } | undefined, read: CachedRead): Filled | undefined {
    const entry = found?.entry;
    if (!entry || !found || read.policy.staleWhileRevalidateMs <= 0) return undefined;
    const now = this.clock();
    if (now >= entry.expiresAt + read.policy.staleWhileRevalidateMs || !this.fresh(entry.filledAt, new Map(entry.positions), read, now)) return undefined;
    this.counts.staleServed++;
    // Not kept in L1: the holder's fresh entry replaces it.
    return { value: entry.value, entry, snapshot: found.snapshot, keepable: false, stale: true };
  }

  /** A read failed with `error`: an expired entry answers it if stale-if-error allows, or the error stands. */
  private staleOrThrow(read: CachedRead, entry: Entry | undefined, error: unknown, outcome?: (what: CacheOutcome) => void): unknown {
    const retryable = error instanceof ShardKitError && error.retryable;
    if (!entry || read.policy.staleIfErrorMs <= 0 || !retryable) throw error;
    const now = this.clock();
    if (now > entry.expiresAt + read.policy.staleIfErrorMs || !this.serves(entry, { ...read, maxAgeMs: undefined }, now)) throw error;
    this.counts.staleServed++;
    outcome?.('stale');
    return copyResult(entry.value);
  }

  /** Expired, but within the degraded read's `staleMs`, and nothing it read was written since (its age bound set aside). */
  private servesDegraded(entry: Entry, read: CachedRead): boolean {
    if (!read.staleMs) return false;
    const now = this.clock();
    return now < entry.expiresAt + read.staleMs && this.serves(entry, { ...read, maxAgeMs: undefined }, now);
  }

  /** Expired, but within stale-while-revalidate, and nothing it read was written since. */
  private servesWhileRevalidating(entry: Entry, read: CachedRead): boolean {
    const now = this.clock();
    return read.policy.staleWhileRevalidateMs > 0 && now < entry.expiresAt + read.policy.staleWhileRevalidateMs && this.serves(entry, read, now);
  }

  private servesNow(entry: Entry, read: Pick<CachedRead, 'dependency' | 'required' | 'maxAgeMs'>): boolean {
    const now = this.clock();
    return now < entry.expiresAt && this.serves(entry, read, now);
  }

  private serves(entry: Entry, read: Pick<CachedRead, 'dependency' | 'required' | 'maxAgeMs'>, now: number): boolean {
    return this.fresh(entry.filledAt, entry.positions, read, now) && this.versions.unchangedSince(read.dependency, entry.since);
  }

  /** Young enough for the read's bound, and including the positions it must see. */
  private fresh(filledAt: number, positions: ReadonlyMap<string, string>, read: Pick<CachedRead, 'required' | 'maxAgeMs'>, now: number): boolean {
    if (read.maxAgeMs !== undefined && now - filledAt > read.maxAgeMs) return false;
    return this.satisfies(positions, read.required);
  }

  private satisfies(positions: ReadonlyMap<string, string>, required: ReadonlyMap<string, string> | undefined): boolean {
    if (!required) return true;
    for (const [shard, target] of required) {
      const position = positions.get(shard);
      if (position === undefined || !this.reached(shard, position, target)) return false;
    }
    return true;
  }
}

/** How long an entry is kept past its TTL: for stale-if-error or stale-while-revalidate. */
function pastTtl(policy: CachePolicy): number {
  return Math.max(policy.staleIfErrorMs, policy.staleWhileRevalidateMs);
}
