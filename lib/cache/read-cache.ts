/**
 * The in-process cache of routed reads (L1): cache-aside, bounded by entries and bytes
 * (lru-cache), with
 *
 *   - invalidation by version (cache-versions.ts): an entry is served only while nothing it read
 *     was written through the kit since its fill began, so a fill that raced a write is never
 *     served, and one that finishes after the write is not even stored (`refusedFills`);
 *   - single flight: concurrent misses of one entry make one read; a waiter uses its answer only
 *     if no write it depends on moved since that read began, otherwise it reads itself;
 *   - TTLs with jitter, so entries filled together do not expire together;
 *   - read-your-writes: an entry carries the positions (LSN / GTID) its shards were known to have
 *     reached before it was read; a read that must see a position it does not reach skips it;
 *   - stale-if-error (opt-in): while the read fails with a retryable error (breaker open, node
 *     shedding, deadline), an expired entry no write has invalidated is served, within
 *     `staleIfErrorMs` past its TTL, and counted.
 *
 * With a shared level (L2, redis-tier.ts) a miss of this process asks it before the database;
 * among instances that miss together, one takes the entry's lock and reads the database while
 * the others wait up to `lockWaitMs` for its entry, then read themselves. L1 can be turned off
 * (`keepLocal: false`): every read then asks L2.
 *
 * Values are copied in and out, so that a caller changing its rows changes neither the entry nor
 * another caller's rows.
 */
import { LRUCache } from 'lru-cache';
import { ShardKitError } from '../errors.js';
import { type CacheDependency, CacheVersions } from './cache-versions.js';
import { copyResult, sizeOfResult } from './result-copy.js';
import type { SharedEntry, Snapshot } from './redis-tier.js';

/** The shared level as the read cache uses it (redis-tier.ts); each call answers undefined/false when it cannot be asked. */
export interface SharedLevel {
  settled(): Promise<void>;
  read(key: string, dependency: CacheDependency): Promise<{ entry: SharedEntry | undefined; snapshot: Snapshot } | undefined>;
  store(key: string, entry: SharedEntry, ttlMs: number, dependency: CacheDependency, snapshot: Snapshot): Promise<boolean>;
  lock(key: string): Promise<string | undefined>;
  unlock(key: string, token: string): Promise<void>;
}

export interface SharedOptions {
  level: SharedLevel;
  /** How long an instance that did not get an entry's lock waits for the holder's entry. */
  lockWaitMs: number;
  /** False: no entries in this process, every read asks L2. */
  keepLocal: boolean;
}

export interface CacheLimits {
  maxEntries: number;
  maxBytes: number;
}

export interface CachePolicy {
  ttlMs: number;
  /** Share of the TTL taken off at random (0..1). */
  jitter: number;
  /** How long past its TTL an entry may still answer a read that fails with a retryable error (0: never). */
  staleIfErrorMs: number;
}

/** One read, as the cache sees it. */
export interface CachedRead {
  /** What identifies the answer: table, topology, SQL and bindings. */
  key: string;
  dependency: CacheDependency;
  policy: CachePolicy;
  /** Positions the answer must include, per shard; undefined: any. */
  required?: ReadonlyMap<string, string>;
  /** How old an entry may be (a replica read's `maxLagMs`); undefined: up to its TTL. */
  maxAgeMs?: number;
}

/** Where the answer of a fill comes from, and what it was known to include before it ran. */
export interface Fill {
  read(): Promise<unknown>;
  /** Positions the shards read were known to have reached before the read; undefined where unknown. */
  positions: ReadonlyMap<string, string>;
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

/** A miss's answer, and the entry it makes (its times and positions). */
interface Filled {
  value: unknown;
  entry: SharedEntry;
}

/** How often an instance waiting for another's fill looks for its entry. */
const LOCK_POLL_MS = 15;

function toEntry(shared: SharedEntry): Omit<Entry, 'since' | 'dependency'> & { dependency: CacheDependency } {
  return { value: shared.value, filledAt: shared.filledAt, expiresAt: shared.expiresAt, positions: new Map(shared.positions), dependency: { table: '' } };
}

interface Flight {
  since: number;
  positions: ReadonlyMap<string, string>;
  answer: Promise<unknown>;
}

export class ReadCache {
  readonly versions = new CacheVersions();
  private readonly entries: LRUCache<string, Entry>;
  private readonly flights = new Map<string, Flight>();
  private readonly counts = { hits: 0, sharedHits: 0, lockWaits: 0, misses: 0, coalesced: 0, staleServed: 0, refusedFills: 0 };

  constructor(
    limits: CacheLimits,
    /** Orders positions of one shard: true when `position` includes everything up to `target`. */
    private readonly reached: (shard: string, position: string, target: string) => boolean,
    private readonly clock: () => number = Date.now,
    private readonly shared?: SharedOptions,
  ) {
    this.entries = new LRUCache<string, Entry>({ max: limits.maxEntries, maxSize: limits.maxBytes, sizeCalculation: (entry) => Math.max(1, sizeOfResult(entry.value)) });
  }

  get stats(): CacheStats {
    return { ...this.counts, entries: this.entries.size, bytes: this.entries.calculatedSize };
  }

  /** The answer of `read`: from an entry, from a read in flight, or from `fill`; `outcome` says which. */
  async answer(read: CachedRead, fill: () => Fill, outcome?: (what: CacheOutcome) => void): Promise<unknown> {
    const now = this.clock();
    const entry = this.shared?.keepLocal === false ? undefined : this.entries.get(read.key);
    if (entry && now < entry.expiresAt && this.serves(entry, read, now)) {
      this.counts.hits++;
      outcome?.('hit');
      return copyResult(entry.value);
    }
    const flight = this.flights.get(read.key);
    if (flight && this.satisfies(flight.positions, read.required)) {
      let answer: unknown;
      try {
        answer = await flight.answer;
      } catch (error) {
        // The waiters of a failed read fail with it (or are answered stale), rather than all read again.
        return this.staleOrThrow(read, entry, error, outcome);
      }
      // The answer is as fresh as the read that made it: usable unless a write moved since.
      if (this.versions.unchangedSince(read.dependency, flight.since)) {
        this.counts.coalesced++;
        outcome?.('coalesced');
        return copyResult(answer);
      }
    }
    return this.fill(read, fill(), entry, outcome);
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

  private async fill(read: CachedRead, fill: Fill, previous: Entry | undefined, outcome?: (what: CacheOutcome) => void): Promise<unknown> {
    const since = this.versions.now();
    this.counts.misses++;
    outcome?.('miss');
    const answer = this.answerOfMiss(read, fill);
    const flight: Flight = { since, positions: fill.positions, answer: answer.then((filled) => filled.value) };
    this.flights.set(read.key, flight);
    let filled: Filled;
    try {
      filled = await answer;
    } catch (error) {
      return this.staleOrThrow(read, previous, error, outcome);
    } finally {
      if (this.flights.get(read.key) === flight) this.flights.delete(read.key);
    }
    if (!this.versions.unchangedSince(read.dependency, since)) {
      this.counts.refusedFills++;
      return filled.value;
    }
    if (this.shared?.keepLocal !== false) {
      const { entry } = filled;
      this.entries.set(
        read.key,
        { value: copyResult(filled.value), since, filledAt: entry.filledAt, expiresAt: entry.expiresAt, positions: new Map(entry.positions), dependency: read.dependency },
        // Kept past its TTL only to answer a failing read (stale-if-error).
        { ttl: Math.max(1, Math.ceil(entry.expiresAt - this.clock() + read.policy.staleIfErrorMs)) },
      );
    }
    return filled.value;
  }

  /** A miss of this process: from the shared level when it holds the entry, else from the database (and stored there). */
  private async answerOfMiss(read: CachedRead, fill: Fill): Promise<Filled> {
    const shared = this.shared?.level;
    const fresh = (value: unknown): SharedEntry => {
      const filledAt = this.clock();
      return { value, positions: [...fill.positions], filledAt, expiresAt: filledAt + read.policy.ttlMs * (1 - read.policy.jitter * Math.random()) };
    };
    if (!shared) return { value: await fill.read(), entry: fresh(undefined) };
    // This process's own writes reach Redis first, so that what it finds there is not older than them.
    await shared.settled();
    const found = await shared.read(read.key, read.dependency);
    const usable = (entry: SharedEntry | undefined) => entry !== undefined && this.clock() < entry.expiresAt && this.serves({ ...toEntry(entry), since: Number.POSITIVE_INFINITY }, read, this.clock(), false);
    if (usable(found?.entry)) {
      this.counts.sharedHits++;
      return { value: found!.entry!.value, entry: found!.entry! };
    }
    const token = found ? await shared.lock(read.key) : undefined;
    if (found && token === undefined) {
      this.counts.lockWaits++;
      const waitUntil = this.clock() + (this.shared?.lockWaitMs ?? 0);
      while (this.clock() < waitUntil) {
        await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
        const filledElsewhere = await shared.read(read.key, read.dependency);
        if (usable(filledElsewhere?.entry)) {
          this.counts.sharedHits++;
          return { value: filledElsewhere!.entry!.value, entry: filledElsewhere!.entry! };
        }
      }
    }
    try {
      const value = await fill.read();
      const entry = fresh(value);
      if (found) await shared.store(read.key, entry, entry.expiresAt - entry.filledAt + read.policy.staleIfErrorMs, read.dependency, found.snapshot);
      return { value, entry };
    } finally {
      if (token !== undefined) void shared.unlock(read.key, token);
    }
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

  /** Whether `entry` may answer `read` now; `versions` false for an entry whose versions another level checked. */
  private serves(entry: Entry, read: CachedRead, now: number, versions = true): boolean {
    if (read.maxAgeMs !== undefined && now - entry.filledAt > read.maxAgeMs) return false;
    return this.satisfies(entry.positions, read.required) && (!versions || this.versions.unchangedSince(read.dependency, entry.since));
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
