/**
 * What makes a cached read safe to serve after writes: a logical clock that every routed write
 * advances after it committed, and the clock value each table and each written key last moved
 * at. A fill notes the clock before it reads (`now()`); its entry stays valid while nothing it
 * depends on moved past that value:
 *
 *   - a read pinned to keys depends on those keys and on the table's epoch (writes whose keys are
 *     not known, an update of every shard, move the epoch);
 *   - any other read depends on the table's generation, which every write to the table moves.
 *
 * Because a write moves the clock only after its commit, a fill that started before the commit
 * (and so may hold the old row) is invalid from then on, whenever it stores: the race where a slow
 * miss writes an old value back after the invalidation cannot leave it served.
 *
 * Key versions are kept for the most recently written keys (an LRU); a key that fell out is taken
 * to have moved as late as the latest one that fell out (`floor`), which can only refuse entries.
 */
import { LRUCache } from 'lru-cache';

/** Keys whose last write is remembered per table; older ones count as written at the floor. */
const KEYS_REMEMBERED = 100_000;

/** A read's dependencies: the keys it pins (their identities), or the whole table. */
export type CacheDependency = { table: string; keys: readonly string[] } | { table: string; keys?: undefined };

class TableVersions {
  /** Moved by every write to the table. */
  generation = 0;
  /** Moved by writes whose keys are not known. */
  epoch = 0;
  /** The latest version of a key that was forgotten. */
  floor = 0;
  readonly keys = new LRUCache<string, number>({
    max: KEYS_REMEMBERED,
    dispose: (version, _key, reason) => {
      if (reason === 'evict') this.floor = Math.max(this.floor, version);
    },
  });

  versionOf(key: string): number {
    return this.keys.get(key) ?? this.floor;
  }
}

export class CacheVersions {
  private clock = 0;
  /** Moved by a flush of everything. */
  private everything = 0;
  private readonly tables = new Map<string, TableVersions>();

  /** The clock now: what a fill notes before it reads. */
  now(): number {
    return this.clock;
  }

  /** After a write to `keys` of `table` committed (or may have). */
  wroteKeys(table: string, keys: readonly string[]): void {
    const versions = this.versionsOf(table);
    const version = ++this.clock;
    for (const key of keys) versions.keys.set(key, version);
    versions.generation = version;
  }

  /** After a write to `table` whose keys are not known committed (or may have). */
  wroteTable(table: string): void {
    const versions = this.versionsOf(table);
    const version = ++this.clock;
    versions.epoch = version;
    versions.generation = version;
  }

  /** Every table at once (a flush): no fill that began before is served or stored. */
  wroteEverything(): void {
    this.everything = ++this.clock;
  }

  /** True while nothing `dependency` names moved after `since`. */
  unchangedSince(dependency: CacheDependency, since: number): boolean {
    if (this.everything > since) return false;
    const versions = this.tables.get(dependency.table);
    if (!versions) return true;
    if (dependency.keys === undefined) return versions.generation <= since;
    if (versions.epoch > since) return false;
    for (const key of dependency.keys) if (versions.versionOf(key) > since) return false;
    return true;
  }

  private versionsOf(table: string): TableVersions {
    let versions = this.tables.get(table);
    if (!versions) {
      versions = new TableVersions();
      this.tables.set(table, versions);
    }
    return versions;
  }
}
