/**
 * A channel on which one process tells the others to look again now instead of at their next
 * poll: PostgreSQL's LISTEN/NOTIFY. Only a hint: a missed notification costs one poll interval,
 * never correctness, so a listener that fails or loses its connection falls back to polling.
 */
import type { Knex } from 'knex';
import { openRawConnection } from '../knex/connections.js';

export interface ChangeFeed {
  notify(db: Knex, channel: string, payload: string): Promise<void>;
  /**
   * Calls `onMessage` for each notification on `channel`, over a connection of its own (outside
   * the pool), until the returned function is called; `onLost` when that connection fails.
   */
  listen(db: Knex, channel: string, onMessage: (payload: string) => void, onLost: () => void): Promise<() => Promise<void>>;
}

interface ListeningConnection {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): void;
  on(event: 'error' | 'end', listener: () => void): void;
  removeAllListeners(): void;
}

export const postgresChangeFeed: ChangeFeed = {
  async notify(db, channel, payload) {
    await db.raw('select pg_notify(?, ?)', [channel, payload]);
  },
  async listen(db, channel, onMessage, onLost) {
    const { connection, close } = await openRawConnection<ListeningConnection>(db);
    let lost = false;
    const lose = () => {
      if (lost) return;
      lost = true;
      onLost();
    };
    connection.on('notification', (message) => {
      if (message.channel === channel) onMessage(message.payload ?? '');
    });
    connection.on('error', lose);
    connection.on('end', lose);
    try {
      await connection.query(db.raw('LISTEN ??', [channel]).toQuery());
    } catch (error) {
      await close().catch(() => undefined);
      throw error;
    }
    return async () => {
      lost = true;
      connection.removeAllListeners();
      await close().catch(() => undefined);
    };
  },
};
