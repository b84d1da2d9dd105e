/**
 * Connections taken out of knex's usual one-statement lifetime: one held from the pool for a
 * session-level lock (it passes the node's guard like any other), and one made outside the pool
 * for a LISTEN that lasts as long as the kit (its socket is tracked like the pool's).
 */
import type { Knex } from 'knex';
import { type AnyQueryBuilder, bindToClient } from './builder-internals.js';

interface PoolClient {
  raw(sql: string, bindings: readonly Knex.RawBinding[]): Knex.Raw;
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  destroyRawConnection(connection: unknown): Promise<void>;
}

/** knex's own mark of a connection its pool must destroy rather than hand out again. */
export const DISPOSED = '__knex__disposed';

interface RawClient<T> {
  acquireRawConnection(): Promise<T>;
  destroyRawConnection(connection: T): Promise<void>;
}

export interface HeldConnection {
  /** Runs `sql` on the held connection. */
  raw(sql: string, bindings: readonly unknown[]): Promise<unknown>;
  /** The builder (a private copy), bound to run on the held connection. */
  bind(query: AnyQueryBuilder): AnyQueryBuilder;
  release(): Promise<void>;
  /** Closes the connection instead of returning it (its session state is unknown); the pool replaces it. */
  discard(): Promise<void>;
}

/** A pooled connection of `db`, held until released (once). */
export async function holdConnection(db: Knex): Promise<HeldConnection> {
  const client = db.client as unknown as PoolClient;
  const connection = await client.acquireConnection();
  let released = false;
  return {
    // The client that gave the connection, not `db.client` again: a live knex may stand for another node by then.
    raw: (sql, bindings) => client.raw(sql, [...bindings] as Knex.RawBinding[]).connection(connection),
    bind: (query) => (bindToClient(query, client as unknown as Knex.Client) as Knex.QueryBuilder).connection(connection) as unknown as AnyQueryBuilder,
    release: async () => {
      if (released) return;
      released = true;
      await client.releaseConnection(connection);
    },
    discard: async () => {
      if (released) return;
      released = true;
      (connection as Record<string, unknown>)[DISPOSED] = 'discarded by shardkit';
      await client.destroyRawConnection(connection).catch(() => undefined);
      await client.releaseConnection(connection);
    },
  };
}

/** A connection outside `db`'s pool, with its settings; `close` ends it. */
export async function openRawConnection<T>(db: Knex): Promise<{ connection: T; close(): Promise<void> }> {
  const client = db.client as unknown as RawClient<T>;
  const connection = await client.acquireRawConnection();
  return { connection, close: () => client.destroyRawConnection(connection) };
}
