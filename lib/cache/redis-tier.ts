/**
 * The shared level of the read cache (L2), in Redis (ioredis, loaded only when configured).
 *
 * What a write moves lives in Redis too, so that every instance judges an entry alike:
 *
 *   <prefix>x                 the epoch of everything (a flush of all moves it)
 *   <prefix>v:<table>:<key>   a key's version        <prefix>t:<table>   the table's epoch (writes of unknown keys)
 *   <prefix>g:<table>         the table's generation (every write)
 *   <prefix>w:<table>         writes to the table in progress: a sorted set of write ids scored by when they
 *                             stop counting (a writer that died blocks stores for a while only); adding
 *                             and removing an id is idempotent, so a call that timed out but was applied
 *                             later, or was sent again, cannot leave the count wrong
 *   <prefix>e:<sha1>          an entry: the answer, the versions it was filled under, positions, times
 *   <prefix>l:<sha1>          the lock of the instance filling an entry (SET NX PX: a dead holder cannot block)
 *   <prefix>invalidations     the channel that tells the other instances' L1 of each write
 *   <prefix>stats             each instance's cache counters (a hash by instance, refreshed every few seconds), for `shardkit status`
 *
 * A write moves its versions and adds its id to those in progress before it runs
 * (`beforeWrite`), and moves them again and removes its id when it ended (`afterWrite`); an
 * entry is stored only if the versions are those its fill began under and no write to the table
 * is in progress (one Lua script, so atomically). So no fill that read before a commit is stored after it, on any instance, and an
 * entry read after a commit never predates it.
 *
 * Every call has a deadline (`timeoutMs`) and passes a breaker: while Redis is down or slow the
 * cache works from the database, and callers see no error. While the subscription is not up
 * (before its first SUBSCRIBE is confirmed, after its connection closed) this instance's L1 is
 * not used, for invalidations may be missed; it starts empty when the subscription is back.
 * Ends of writes Redis could not be told are told again, per table, until they are.
 *
 * Redis must not evict or roll back these keys: run it with `maxmemory-policy noeviction`
 * (version keys carry TTLs, so volatile-* policies would evict them) and, if it persists, know
 * that a restart from an older snapshot brings entries back with their versions as they were then.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import CircuitBreaker from 'opossum';
import { CacheUnavailableError, DriverMissingError } from '../errors.js';
import type { CacheDependency } from './cache-versions.js';
import { decodeTagged as decode, encodeTagged as encode } from './tagged-json.js';

export interface RedisTierOptions {
  /** A redis:// URL. */
  url: string;
  keyPrefix: string;
  /** Each call's deadline. */
  timeoutMs: number;
  /** How long a filling instance holds an entry's lock. */
  lockMs: number;
  /** How long versions of written keys are kept: longer than any entry lives. */
  versionTtlMs: number;
}

/** An entry as Redis keeps it. */
export interface SharedEntry {
  value: unknown;
  positions: [string, string][];
  filledAt: number;
  expiresAt: number;
}

/** The outcome of asking for an entry's fill lock: taken (with its token), held by another instance, or unknown (Redis did not answer). */
export interface LockOutcome {
  token?: string;
  held: boolean;
}

/** The versions a fill began under (opaque to the caller). */
export interface Snapshot {
  readonly keys: string[];
  readonly values: (string | null)[];
}

/** What the read cache hears from the tier. */
export interface TierListener {
  /** Another instance's write or flush. */
  invalidated(message: InvalidationMessage): void;
  /** Invalidations may be missed from now on (the subscription is down). */
  deaf(): void;
  /** The subscription is up: invalidations arrive (any missed before are unknown). */
  listening(): void;
}

export interface InvalidationMessage {
  origin: string;
  table?: string;
  keys?: string[];
  /** Every table (a flush). */
  all?: true;
}

interface RedisClient {
  get(key: string): Promise<string | null>;
  mget(...keys: string[]): Promise<(string | null)[]>;
  set(key: string, value: string, ...args: (string | number)[]): Promise<string | null>;
  eval(script: string, keyCount: number, ...args: (string | number)[]): Promise<unknown>;
  publish(channel: string, message: string): Promise<number>;
  subscribe(channel: string): Promise<unknown>;
  scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>;
  del(...keys: string[]): Promise<number>;
  hset(key: string, field: string, value: string): Promise<number>;
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, ...fields: string[]): Promise<number>;
  incr(key: string): Promise<number>;
  zrem(key: string, ...members: string[]): Promise<number>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  duplicate(): RedisClient;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Redis's own clock in ms, so that every instance's write ids expire alike whatever their clocks say. */
const NOW_MS = `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

/** KEYS: the snapshot's version keys, then the table's writes in progress; ARGV: their count, then the snapshot's values. */
const UNCHANGED = `${NOW_MS}
local count = tonumber(ARGV[1])
for i = 1, count do
  if redis.call('GET', KEYS[i]) ~= (ARGV[i + 1] ~= '' and ARGV[i + 1] or false) then return 0 end
end
redis.call('ZREMRANGEBYSCORE', KEYS[count + 1], '-inf', now)
if redis.call('ZCARD', KEYS[count + 1]) > 0 then return 0 end
return 1`;

/** As UNCHANGED, then stores the entry (KEYS[count + 2], ARGV[count + 2], ttl ARGV[count + 3]). */
const STORE_IF_UNCHANGED = UNCHANGED.replace(/return 1$/, `redis.call('SET', KEYS[count + 2], ARGV[count + 2], 'PX', ARGV[count + 3])
return 1`);

/**
 * Moves versions (INCR, kept ARGV[2] ms) and adds (ARGV[3] = 'add') or removes ('remove') the
 * write id ARGV[4] among those in progress (the last key), an added one counting ARGV[5] ms.
 */
const MOVE_VERSIONS = `${NOW_MS}
local count = tonumber(ARGV[1])
for i = 1, count do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
local writes = KEYS[count + 1]
if ARGV[3] == 'add' then
  redis.call('ZADD', writes, now + tonumber(ARGV[5]), ARGV[4])
  redis.call('PEXPIRE', writes, ARGV[5])
elseif ARGV[3] == 'remove' then
  redis.call('ZREM', writes, ARGV[4])
end
return 1`;

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Writes in progress count for at most this long: a writer that died mid-write blocks stores no longer. */
const PROGRESS_TTL_MS = 60_000;
/** How often an instance reports its counters; reports older than STATS_STALE_MS are of instances gone. */
const STATS_EVERY_MS = 2000;
export const STATS_STALE_MS = 10_000;

/** What an instance reported of its cache. */
export interface InstanceStats<T> {
  instance: string;
  ageMs: number;
  stats: T;
}

/** How long opening a kit waits for Redis before going on without it. */
const CONNECT_WAIT_MS = 1000;
/** How often ends of writes Redis could not be told are told again. */
const RETRY_OWED_MS = 250;
/** A write of more keys than this moves its table's versions instead of each key's. */
const MAX_KEYS_PER_WRITE = 100;

const requireModule = createRequire(import.meta.url);

export class RedisTier {
  readonly origin = randomUUID();
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  private readonly channel: string;
  private subscriber: RedisClient | undefined;
  private readonly pendingWrites = new Set<Promise<unknown>>();
  /** Ends of writes that Redis could not be told (down, slow), per table: the ids they end, and what they wrote. */
  private readonly owed = new Map<string, { ids: Set<string>; keys: Set<string> | undefined }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private listening = false;
  private closed = false;

  private constructor(
    private readonly client: RedisClient,
    private readonly options: RedisTierOptions,
    private readonly listener: TierListener,
  ) {
    this.channel = `${options.keyPrefix}invalidations`;
    this.breaker = new CircuitBreaker((call: () => Promise<unknown>) => call(), {
      timeout: options.timeoutMs,
      errorThresholdPercentage: 50,
      volumeThreshold: 3,
      resetTimeout: 1000,
      rollingCountTimeout: 5000,
    });
  }

  /** Connects (waiting up to a second for Redis: the cache works without it meanwhile). */
  static async open(options: RedisTierOptions, listener: TierListener, stats: () => object): Promise<RedisTier> {
    let Redis: new (url: string, options: object) => RedisClient;
    try {
      Redis = requireModule('ioredis') as typeof Redis;
    } catch (error) {
      throw new DriverMissingError('redis cache', ['ioredis'], error);
    }
    const client = new Redis(options.url, {
      // Fail at once while disconnected instead of queueing: the cache is bypassed meanwhile.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1000),
      retryStrategy: (attempt: number) => Math.min(1000, 50 * attempt),
      lazyConnect: false,
    });
    // Connection errors are the breaker's business; an unhandled 'error' would crash the process.
    client.on('error', () => undefined);
    const tier = new RedisTier(client, options, listener);
    await tier.connected(client, CONNECT_WAIT_MS);
    await tier.subscribe();
    tier.reportStats(stats);
    return tier;
  }

  /** The counters every instance reported lately; undefined while Redis cannot be asked. */
  async instanceStats<T>(): Promise<InstanceStats<T>[] | undefined> {
    const reports = (await this.call(() => this.client.hgetall(this.statsKey()))) as Record<string, string> | undefined;
    if (!reports) return undefined;
    const now = Date.now();
    const fresh: InstanceStats<T>[] = [];
    const expired: string[] = [];
    for (const [instance, text] of Object.entries(reports)) {
      const report = safely(() => JSON.parse(text) as { at: number; stats: T });
      const ageMs = report ? now - report.at : Number.POSITIVE_INFINITY;
      if (report && ageMs < STATS_STALE_MS) fresh.push({ instance, ageMs, stats: report.stats });
      // Reports of instances that crashed long ago (or that do not parse) are dropped.
      else if (ageMs > 10 * STATS_STALE_MS) expired.push(instance);
    }
    if (expired.length > 0) await this.call(() => this.client.hdel(this.statsKey(), ...expired));
    return fresh;
  }

  private reportStats(stats: () => object): void {
    const report = () => this.call(() => this.client.hset(this.statsKey(), this.origin, JSON.stringify({ at: Date.now(), stats: stats() })));
    this.statsTimer = setInterval(() => void report(), STATS_EVERY_MS);
    this.statsTimer.unref();
    void report();
  }

  /** This process's invalidations sent so far have reached Redis (or failed): an L2 read after them sees them. */
  async settled(): Promise<void> {
    if (this.pendingWrites.size > 0) await Promise.allSettled([...this.pendingWrites]);
  }

  /** The entry and the versions now; undefined while Redis cannot be asked. */
  async read(key: string, dependency: CacheDependency): Promise<{ entry: SharedEntry | undefined; snapshot: Snapshot } | undefined> {
    const versionKeys = this.versionKeys(dependency);
    const found = (await this.call(() => this.client.mget(this.entryKey(key), ...versionKeys))) as (string | null)[] | undefined;
    if (!found) return undefined;
    const [stored, ...values] = found;
    const snapshot: Snapshot = { keys: versionKeys, values };
    if (!stored) return { entry: undefined, snapshot };
    // An entry that does not decode (another release's, damaged) is a miss.
    const parsed = safely(() => decode(stored) as SharedEntry & { versions?: (string | null)[] });
    const versions = parsed?.versions;
    const unchanged = Array.isArray(versions) && versions.length === values.length && versions.every((value, index) => value === values[index]);
    return { entry: unchanged ? parsed : undefined, snapshot };
  }

  /** True when nothing `snapshot` names moved and no write to the table is in progress; undefined when Redis cannot be asked. */
  async unchanged(dependency: CacheDependency, snapshot: Snapshot): Promise<boolean | undefined> {
    const keys = [...snapshot.keys, this.progressKey(dependency.table)];
    const outcome = await this.call(() => this.client.eval(UNCHANGED, keys.length, ...keys, snapshot.keys.length, ...snapshot.values.map((value) => value ?? '')));
    return outcome === undefined ? undefined : outcome === 1;
  }

  /** Stores `entry` if nothing moved since `snapshot`: true when stored, false when refused, undefined when Redis cannot be asked. */
  async store(key: string, entry: SharedEntry, ttlMs: number, dependency: CacheDependency, snapshot: Snapshot): Promise<boolean | undefined> {
    const encoded = encode({ ...entry, versions: snapshot.values });
    const keys = [...snapshot.keys, this.progressKey(dependency.table), this.entryKey(key)];
    const args = [snapshot.keys.length, ...snapshot.values.map((value) => value ?? ''), encoded, Math.max(1, Math.ceil(ttlMs))];
    const outcome = await this.call(() => this.client.eval(STORE_IF_UNCHANGED, keys.length, ...keys, ...args));
    return outcome === undefined ? undefined : outcome === 1;
  }

  /** The entry's fill lock: taken, held by another instance, or unknown (then the caller reads at once). */
  async lock(key: string): Promise<LockOutcome> {
    const token = randomUUID();
    const taken = await this.call(() => this.client.set(this.lockKey(key), token, 'PX', this.options.lockMs, 'NX'));
    if (taken === 'OK') return { token, held: false };
    return { held: taken === null };
  }

  async unlock(key: string, token: string): Promise<void> {
    await this.call(() => this.client.eval(UNLOCK, 1, this.lockKey(key), token));
  }

  /** Before a write (`id`) to `table` (its keys, if known) runs; the write's end is told whether or not Redis answered. */
  async beforeWrite(table: string, keys: readonly string[] | undefined, id: string): Promise<void> {
    await this.move(table, writtenKeys(keys), { add: id });
  }

  /** After a write ended (committed, failed or of unknown outcome): versions move again, it is no longer in progress, the other instances are told. */
  afterWrite(table: string, keys: readonly string[] | undefined, id: string): Promise<void> {
    const moved = this.endWrites(table, writtenKeys(keys), [id]);
    this.pendingWrites.add(moved);
    return moved.finally(() => this.pendingWrites.delete(moved));
  }

  private async endWrites(table: string, keys: readonly string[] | undefined, ids: readonly string[]): Promise<void> {
    // One call moves the versions and removes the first id; the others (owed ones) are removed with it.
    const [first, ...others] = ids;
    const moved = await this.move(table, keys, { remove: first! });
    const removed = moved && (others.length === 0 || (await this.call(() => this.client.zrem(this.progressKey(table), ...others))) !== undefined);
    if (!removed) {
      this.owe(table, keys, ids);
      return;
    }
    await this.publish({ origin: this.origin, table, ...(keys ? { keys: [...keys] } : {}) });
  }

  /** Tells Redis later, merged per table (keys beyond MAX_KEYS_PER_WRITE become the whole table). */
  private owe(table: string, keys: readonly string[] | undefined, ids: readonly string[]): void {
    if (this.closed) return;
    const owed = this.owed.get(table) ?? { ids: new Set<string>(), keys: new Set<string>() };
    for (const id of ids) owed.ids.add(id);
    if (keys === undefined || owed.keys === undefined) owed.keys = undefined;
    else for (const key of keys) owed.keys.add(key);
    if (owed.keys && owed.keys.size > MAX_KEYS_PER_WRITE) owed.keys = undefined;
    this.owed.set(table, owed);
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      void this.payOwed();
    }, RETRY_OWED_MS);
    this.retryTimer.unref();
  }

  private async payOwed(): Promise<void> {
    const owed = [...this.owed];
    this.owed.clear();
    for (const [table, { ids, keys }] of owed) await this.endWrites(table, keys ? [...keys] : undefined, [...ids]);
  }

  /** Drops the shared entries of one table or all (their versions move), and tells every instance. */
  async flush(table?: string): Promise<void> {
    if (table !== undefined) {
      if (!(await this.move(table, undefined, {}))) throw new CacheUnavailableError('flush');
      await this.publish({ origin: this.origin, table });
      return;
    }
    if ((await this.call(() => this.client.incr(this.globalKey()))) === undefined) throw new CacheUnavailableError('flush');
    let cursor = '0';
    do {
      const page = (await this.call(() => this.client.scan(cursor, 'MATCH', `${this.options.keyPrefix}e:*`, 'COUNT', 1000))) as [string, string[]] | undefined;
      if (!page) throw new CacheUnavailableError('flush');
      const [next, keys] = page;
      if (keys.length > 0 && (await this.call(() => this.client.del(...keys))) === undefined) throw new CacheUnavailableError('flush');
      cursor = next;
    } while (cursor !== '0');
    await this.publish({ origin: this.origin, all: true });
  }

  /** True while the subscription that brings other instances' invalidations is up. */
  get subscribed(): boolean {
    return this.listening;
  }

  async close(): Promise<void> {
    await this.settled();
    clearInterval(this.statsTimer);
    await this.call(() => this.client.hdel(this.statsKey(), this.origin));
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.breaker.shutdown();
    for (const connection of [this.subscriber, this.client]) {
      if (!connection) continue;
      await Promise.race([connection.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, this.options.timeoutMs * 4).unref())]);
      connection.disconnect();
    }
  }

  /** Moves the versions of what a write touches, and adds or removes its id among those in progress; true when Redis applied it. */
  private async move(table: string, keys: readonly string[] | undefined, write: { add?: string; remove?: string }): Promise<boolean> {
    const versions = [this.key('g', table), ...(keys ? keys.map((key) => this.key('v', table, key)) : [this.key('t', table)])];
    const all = [...versions, this.progressKey(table)];
    const [operation, id] = write.add !== undefined ? ['add', write.add] : write.remove !== undefined ? ['remove', write.remove] : ['none', ''];
    return (await this.call(() => this.client.eval(MOVE_VERSIONS, all.length, ...all, versions.length, this.options.versionTtlMs, operation, id, PROGRESS_TTL_MS))) === 1;
  }

  private async publish(message: InvalidationMessage): Promise<void> {
    await this.call(() => this.client.publish(this.channel, JSON.stringify(message)));
  }

  /** Resolves once `connection` is ready, or after `waitMs`. */
  private async connected(connection: RedisClient, waitMs: number): Promise<void> {
    if ((connection as { status?: string }).status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => connection.once('ready', resolve)), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  /** L1 is trusted only between a confirmed SUBSCRIBE and the subscriber's connection closing. */
  private async subscribe(): Promise<void> {
    const subscriber = this.client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    const subscribed = new Promise<void>((resolve) => {
      subscriber.on('ready', () => {
        if (this.closed) return resolve();
        subscriber.subscribe(this.channel).then(
          () => {
            this.listening = true;
            this.listener.listening();
            resolve();
          },
          () => resolve(),
        );
      });
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([subscribed, new Promise((resolve) => (timer = setTimeout(resolve, CONNECT_WAIT_MS)))]);
    clearTimeout(timer);
    subscriber.on('close', () => {
      this.listening = false;
      this.listener.deaf();
    });
    subscriber.on('message', (_channel: string, text: string) => {
      const message = safely(() => JSON.parse(text) as InvalidationMessage);
      if (message && message.origin !== this.origin) this.listener.invalidated(message);
    });
  }

  /** One Redis call under the breaker and the deadline; undefined when it failed or was not tried. */
  private async call<T>(work: () => Promise<T>): Promise<T | undefined> {
    if (this.closed) return undefined;
    try {
      return (await this.breaker.fire(work)) as T;
    } catch {
      return undefined;
    }
  }

  private versionKeys(dependency: CacheDependency): string[] {
    const global = this.globalKey();
    return dependency.keys ? [global, this.key('t', dependency.table), ...dependency.keys.map((key) => this.key('v', dependency.table, key))] : [global, this.key('g', dependency.table)];
  }

  private globalKey(): string {
    return `${this.options.keyPrefix}x`;
  }

  private statsKey(): string {
    return `${this.options.keyPrefix}stats`;
  }

  private progressKey(table: string): string {
    return this.key('w', table);
  }

  private entryKey(key: string): string {
    return this.hashedKey('e', key);
  }

  private lockKey(key: string): string {
    return this.hashedKey('l', key);
  }

  /** An entry's keys are long (SQL and bindings): Redis keys use their SHA-1. */
  private hashedKey(kind: string, key: string): string {
    return `${this.options.keyPrefix}${kind}:${createHash('sha1').update(key).digest('hex')}`;
  }

  private key(kind: string, table: string, key?: string): string {
    return key === undefined ? `${this.options.keyPrefix}${kind}:${table}` : `${this.options.keyPrefix}${kind}:${table}:${key}`;
  }
}

function safely<T>(work: () => T): T | undefined {
  try {
    return work();
  } catch {
    return undefined;
  }
}

/** The keys of a write as versions move them: too many become the whole table. */
function writtenKeys(keys: readonly string[] | undefined): readonly string[] | undefined {
  return keys !== undefined && keys.length <= MAX_KEYS_PER_WRITE ? keys : undefined;
}
