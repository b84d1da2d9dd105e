/**
 * Connections taken out of knex's usual one-statement lifetime: one held from the pool for a
 * session-level lock (it passes the node's guard like any other), and one made outside the pool
 * for a LISTEN that lasts as long as the kit (its socket is tracked like the pool's).
 */
import type { Knex } from 'knex';

interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
}

interface RawClient<T> {
  acquireRawConnection(): Promise<T>;
  destroyRawConnection(connection: T): Promise<void>;
}

export interface HeldConnection {
  /** Runs `sql` on the held connection. */
  raw(sql: string, bindings: readonly unknown[]): Promise<unknown>;
  release(): Promise<void>;
}

/** A pooled connection of `db`, held until released (once). */
export async function holdConnection(db: Knex): Promise<HeldConnection> {
  const client = db.client as unknown as PoolClient;
  const connection = await client.acquireConnection();
  let released = false;
  return {
    raw: (sql, bindings) => db.raw(sql, [...bindings] as Knex.RawBinding[]).connection(connection),
    release: async () => {
      if (released) return;
      released = true;
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
