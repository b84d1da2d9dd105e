/**
 * Drains a shard's sync outbox (sync-outbox.ts): syncs each entry's keys, oldest first, and
 * deletes it. Safe at any time and from anyone (a runner, an instance, two at once): a sync reads
 * the latest state under the key's lock, so an entry applied twice or late copies the latest
 * state. Only entries of the tables given are read.
 */
import type { ShardDatabases } from '../../access/shard-databases.js';
import { syncKeys } from './key-sync.js';
import type { MigrationTables } from './migration-tables.js';
import { countOutbox, deleteOutbox, outboxIds, readOutbox } from './sync-outbox.js';

const ENTRIES_PER_READ = 100;

export interface DrainOutcome {
  applied: number;
  /**
   * Entries that were waiting when the drain began and still are. Entries written meanwhile do
   * not count: they belong to writes in flight, whose own sync after commit applies them.
   */
  left: number;
}

export async function drainOutbox(databases: ShardDatabases, shard: string, parts: readonly MigrationTables[]): Promise<DrainOutcome> {
  const partOf = (migration: string, table: string) => parts.find((tables) => tables.migration.name === migration && tables.migration.source === table);
  const waiting = await outboxIds(databases, shard, parts);
  let applied = 0;
  for (;;) {
    const entries = await readOutbox(databases, shard, parts, ENTRIES_PER_READ);
    for (const entry of entries) {
      await syncKeys(databases, partOf(entry.migration, entry.table)!, entry.direction, entry.keys);
      await deleteOutbox(databases.primary(shard), [entry.id]);
      applied++;
    }
    if (entries.length < ENTRIES_PER_READ) break;
  }
  return { applied, left: await countOutbox(databases, shard, parts, waiting) };
}
