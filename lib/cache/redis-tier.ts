/**
 * The shared level of the read cache (L2), in Redis (ioredis, loaded only when configured).
 *
 * What a write moves lives in Redis too, so that every instance judges an entry alike:
 *
 *   <prefix>v:<table>:<key>   a key's version        <prefix>t:<table>   the table's epoch (writes of unknown keys)
 *   <prefix>g:<table>         the table's generation (every write)
 *   <prefix>w:<table>         writes to the table in progress (expires: a writer that died leaves it for a while only)
 *   <prefix>e:<sha1>          an entry: the answer, the versions it was filled under, positions, times
 *   <prefix>l:<sha1>          the lock of the instance filling an entry (SET NX PX: a dead holder cannot block)
 *   <prefix>invalidations     the channel that tells the other instances' L1 of each write
 *   <prefix>stats             each instance's cache counters (a hash by instance, refreshed every few seconds), for `shardkit status`
 *
 * A write moves its versions and counts itself in progress before it runs (`beforeWrite`), and
 * moves them again when it ended (`afterWrite`); an entry is stored only if the versions are
 * those its fill began under and no write to the table is in progress (one Lua script, so
 * atomically). So no fill that read before a commit is stored after it, on any instance, and an
 * entry read after a commit never predates it.
 *
 * Every call has a deadline (`timeoutMs`) and passes a breaker: while Redis is down or slow the
 * cache works from L1 and the database, and callers see no error. A subscriber that lost its
 * connection may have missed invalidations: when it is back, this instance's L1 is dropped.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import CircuitBreaker from 'opossum';
import { CacheUnavailableError } from '../errors.js';
import type { CacheDependency } from './cache-versions.js';

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

/** The versions a fill began under (opaque to the caller). */
export interface Snapshot {
  readonly keys: string[];
  readonly values: (string | null)[];
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
  hdel(key: string, field: string): Promise<number>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  duplicate(): RedisClient;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Stores an entry if the versions are still the snapshot's and no write to the table is in progress. */
const STORE_IF_UNCHANGED = `
local count = tonumber(ARGV[1])
for i = 1, count do
  if redis.call('GET', KEYS[i]) ~= (ARGV[i + 1] ~= '' and ARGV[i + 1] or false) then return 0 end
end
local progress = tonumber(redis.call('GET', KEYS[count + 1]) or '0')
if progress > 0 then return 0 end
redis.call('SET', KEYS[count + 2], ARGV[count + 2], 'PX', ARGV[count + 3])
return 1`;

/** Moves versions (INCR, kept `ttl` ms) and the count of writes in progress by `delta`. */
const MOVE_VERSIONS = `
local count = tonumber(ARGV[1])
for i = 1, count do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
local progress = redis.call('INCRBY', KEYS[count + 1], ARGV[3])
if progress <= 0 then redis.call('DEL', KEYS[count + 1]) else redis.call('PEXPIRE', KEYS[count + 1], ARGV[4]) end
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

/** How often ends of writes Redis could not be told are told again, and how many are kept. */
const RETRY_OWED_MS = 250;
const MAX_OWED = 10_000;

const requireModule = createRequire(import.meta.url);

export class RedisTier {
  readonly origin = randomUUID();
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  private readonly channel: string;
  private subscriber: RedisClient | undefined;
  private readonly pendingWrites = new Set<Promise<unknown>>();
  /** Ends of writes that Redis could not be told (down, slow): until told, the table's stores stay refused. */
  private readonly owed: { table: string; keys: readonly string[] | undefined }[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly client: RedisClient,
    private readonly options: RedisTierOptions,
    private readonly onMessage: (message: InvalidationMessage) => void,
    private readonly onMissedMessages: () => void,
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

  static open(options: RedisTierOptions, onMessage: (message: InvalidationMessage) => void, onMissedMessages: () => void, stats: () => object): RedisTier {
    const Redis = requireModule('ioredis') as new (url: string, options: object) => RedisClient;
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
    const tier = new RedisTier(client, options, onMessage, onMissedMessages);
    tier.subscribe();
    tier.reportStats(stats);
    return tier;
  }

  /** The counters every instance reported lately; undefined while Redis cannot be asked. */
  async instanceStats<T>(): Promise<InstanceStats<T>[] | undefined> {
    const reports = (await this.call(() => this.client.hgetall(this.statsKey()))) as Record<string, string> | undefined;
    if (!reports) return undefined;
    const now = Date.now();
    return Object.entries(reports)
      .map(([instance, text]) => {
        const { at, stats } = JSON.parse(text) as { at: number; stats: T };
        return { instance, ageMs: now - at, stats };
      })
      .filter((report) => report.ageMs < STATS_STALE_MS);
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
    const parsed = decode(stored) as SharedEntry & { versions: (string | null)[] };
    const unchanged = parsed.versions.length === values.length && parsed.versions.every((value, index) => value === values[index]);
    return { entry: unchanged ? parsed : undefined, snapshot };
  }

  /** Stores `entry` if nothing moved since `snapshot`; true when stored. */
  async store(key: string, entry: SharedEntry, ttlMs: number, dependency: CacheDependency, snapshot: Snapshot): Promise<boolean> {
    const encoded = encode({ ...entry, versions: snapshot.values });
    const keys = [...snapshot.keys, this.progressKey(dependency.table), this.entryKey(key)];
    const args = [snapshot.keys.length, ...snapshot.values.map((value) => value ?? ''), encoded, Math.max(1, Math.ceil(ttlMs))];
    return (await this.call(() => this.client.eval(STORE_IF_UNCHANGED, keys.length, ...keys, ...args))) === 1;
  }

  /** The entry's fill lock, or false when another instance holds it (or Redis cannot be asked). */
  async lock(key: string): Promise<string | undefined> {
    const token = randomUUID();
    const taken = await this.call(() => this.client.set(this.lockKey(key), token, 'PX', this.options.lockMs, 'NX'));
    return taken === 'OK' ? token : undefined;
  }

  async unlock(key: string, token: string): Promise<void> {
    await this.call(() => this.client.eval(UNLOCK, 1, this.lockKey(key), token));
  }

  /** Before a write to `table` (its keys, if known) runs. */
  async beforeWrite(table: string, keys: readonly string[] | undefined): Promise<void> {
    await this.move(table, keys, 1);
  }

  /** After a write ended (committed, failed or of unknown outcome): versions move again, the other instances are told. */
  afterWrite(table: string, keys: readonly string[] | undefined): Promise<void> {
    const moved = this.endWrite(table, keys);
    this.pendingWrites.add(moved);
    return moved.finally(() => this.pendingWrites.delete(moved));
  }

  private async endWrite(table: string, keys: readonly string[] | undefined): Promise<void> {
    if (!(await this.move(table, keys, -1))) {
      this.owe(table, keys);
      return;
    }
    await this.publish({ origin: this.origin, table, ...(keys ? { keys: [...keys] } : {}) });
  }

  /** Tells Redis later; if too much is owed, what is told is the table's end of writes alone. */
  private owe(table: string, keys: readonly string[] | undefined): void {
    if (this.closed) return;
    if (this.owed.length < MAX_OWED) this.owed.push({ table, keys });
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      void this.payOwed();
    }, RETRY_OWED_MS);
    this.retryTimer.unref();
  }

  private async payOwed(): Promise<void> {
    const owed = this.owed.splice(0);
    for (const [index, { table, keys }] of owed.entries()) {
      if (!(await this.move(table, keys, -1))) {
        for (const rest of owed.slice(index)) this.owe(rest.table, rest.keys);
        return;
      }
      await this.publish({ origin: this.origin, table, ...(keys ? { keys: [...keys] } : {}) });
    }
  }

  /** Drops the shared entries of one table or all (their versions move), and tells every instance. */
  async flush(table?: string): Promise<void> {
    if (table !== undefined) {
      if (!(await this.move(table, undefined, 0))) throw new CacheUnavailableError('flush');
      await this.publish({ origin: this.origin, table });
      return;
    }
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

  get available(): boolean {
    return !this.breaker.opened;
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

  /** True when Redis applied it. */
  private async move(table: string, keys: readonly string[] | undefined, delta: number): Promise<boolean> {
    const versions = [this.key('g', table), ...(keys ? keys.map((key) => this.key('v', table, key)) : [this.key('t', table)])];
    const all = [...versions, this.progressKey(table)];
    return (await this.call(() => this.client.eval(MOVE_VERSIONS, all.length, ...all, versions.length, this.options.versionTtlMs, delta, PROGRESS_TTL_MS))) === 1;
  }

  private async publish(message: InvalidationMessage): Promise<void> {
    await this.call(() => this.client.publish(this.channel, JSON.stringify(message)));
  }

  private subscribe(): void {
    const subscriber = this.client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined);
    let subscribedOnce = false;
    subscriber.on('ready', () => {
      if (this.closed) return;
      // A subscriber that was away may have missed invalidations: what L1 holds can no longer be trusted.
      if (subscribedOnce) this.onMissedMessages();
      subscribedOnce = true;
      subscriber.subscribe(this.channel).catch(() => undefined);
    });
    subscriber.on('message', (_channel: string, text: string) => {
      try {
        const message = JSON.parse(text) as InvalidationMessage;
        if (message.origin !== this.origin) this.onMessage(message);
      } catch {
        // Not one of ours.
      }
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
    return dependency.keys ? [this.key('t', dependency.table), ...dependency.keys.map((key) => this.key('v', dependency.table, key))] : [this.key('g', dependency.table)];
  }

  private statsKey(): string {
    return `${this.options.keyPrefix}stats`;
  }

  private progressKey(table: string): string {
    return this.key('w', table);
  }

  private entryKey(key: string): string {
    return `${this.options.keyPrefix}e:${createHash('sha1').update(key).digest('hex')}`;
  }

  private lockKey(key: string): string {
    return `${this.options.keyPrefix}l:${createHash('sha1').update(key).digest('hex')}`;
  }

  private key(kind: string, table: string, key?: string): string {
    return key === undefined ? `${this.options.keyPrefix}${kind}:${table}` : `${this.options.keyPrefix}${kind}:${table}:${key}`;
  }
}

/** JSON that keeps Dates, byte arrays and BigInts (other class instances arrive as plain objects). */
function encode(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, field: unknown) {
    const original = this[key];
    if (original instanceof Date) return { $date: original.getTime() };
    if (original instanceof Uint8Array) return { $bytes: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
    if (typeof original === 'bigint') return { $bigint: String(original) };
    return field;
  });
}

function decode(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const tagged = value as { $date?: number; $bytes?: string; $bigint?: string };
    const tags = Object.keys(value);
    if (tags.length !== 1) return value;
    if (tagged.$date !== undefined) return new Date(tagged.$date);
    if (tagged.$bytes !== undefined) return Buffer.from(tagged.$bytes, 'base64');
    if (tagged.$bigint !== undefined) return BigInt(tagged.$bigint);
    return value;
  });
}
