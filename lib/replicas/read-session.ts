/**
 * Read-your-writes without threading tokens by hand. Inside `session.run(fn)` (an
 * AsyncLocalStorage scope, so it follows every await of a request handler), each write records
 * its shard's position after commit, and each read of that shard carries it: a replica serves
 * the read only once it has applied the position, otherwise the primary does.
 *
 *   const session = kit.session(req.cookies.sk);           // resume another request's writes
 *   await session.run(() => handler(req, res));
 *   res.cookie('sk', session.token().toString());
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ConsistencyToken } from './consistency-token.js';

const storage = new AsyncLocalStorage<ReadSession>();

/** The position of a shard whose reads only its primary can serve. */
export const PRIMARY_ONLY = 'primary';

/** The session whose scope the caller runs in, if any. */
export function currentSession(): ReadSession | undefined {
  return storage.getStore();
}

/** Orders positions of one shard: true when `position` includes everything up to `target`. */
export type PositionOrder = (shard: string, position: string, target: string) => boolean;

export class ReadSession {
  private readonly positions: Map<string, string>;

  constructor(
    private readonly reached: PositionOrder,
    initial?: ConsistencyToken,
    /** Record positions of shards without replicas too: a cache (another process's) may answer their reads. */
    readonly everyShard = false,
  ) {
    this.positions = new Map(initial?.positions ?? []);
  }

  /**
   * Runs `fn` in this session. Its result is awaited inside the scope, so that a knex builder
   * returned unexecuted (`session.run(() => kit.table('t').insert(row))`) still runs in it.
   */
  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    return storage.run(this, async () => await fn());
  }

  /** Keeps the furthest position per shard, whatever order concurrent writes report in. */
  record(shard: string, position: string): void {
    const current = this.positions.get(shard);
    if (current === PRIMARY_ONLY) return;
    if (current === undefined || !this.reached(shard, current, position)) this.positions.set(shard, position);
  }

  /** After a write whose position could not be read: this session reads the shard from its primary. */
  requirePrimary(shard: string): void {
    this.positions.set(shard, PRIMARY_ONLY);
  }

  /** Whether a write recorded (or the initial token held) any position: reads without one need none. */
  get recordsAny(): boolean {
    return this.positions.size > 0;
  }

  positionFor(shard: string): string | undefined {
    return this.positions.get(shard);
  }

  token(): ConsistencyToken {
    return new ConsistencyToken(this.positions);
  }
}
