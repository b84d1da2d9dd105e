/**
 * The sync outbox: a durable record, written in the application's own transaction, of keys whose
 * copy to the other side of a migration must happen on another shard (a rebalance's moving rows,
 * or two tables sharded by different columns). A transaction cannot write the other shard
 * atomically, so it writes an outbox row beside its change instead: both commit or neither does.
 * After the commit the kit syncs the keys and deletes the row; a sync that fails, or a process
 * that dies first, leaves the row, and a drain (the runner before every phase change and every
 * verify, the instance on its next poll) applies it later. Syncs read the latest state under the
 * key's lock, so applying an entry twice, or late, copies the latest state: never an older one.
 *
 * One table per shard, `shardkit_sync_outbox`, created by the runner when a migration starts.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { ShardDatabases } from '../../access/shard-databases.js';
import { createTableIfAbsent } from '../../knex/create-table-if-absent.js';
import { chunks } from '../../util/chunks.js';
import type { Direction } from './key-sync.js';
import type { MigrationTables } from './migration-tables.js';

export const OUTBOX_TABLE = 'shardkit_sync_outbox';

export interface OutboxEntry {
  id: string;
  migration: string;
  /** The source table: a rebalance moves several tables under one name. */
  table: string;
  direction: Direction;
  keys: unknown[][];
}

/** Creates the outbox table on `db` unless it exists. */
export function ensureOutbox(db: Knex): Promise<void> {
  return createTableIfAbsent(db, OUTBOX_TABLE, (table) => {
    table.string('id', 36).primary();
    table.string('migration', 200).notNullable();
    table.string('source_table', 200).notNullable();
    table.string('direction', 16).notNullable();
    table.text('key_list').notNullable();
    table.bigInteger('created_at').notNullable();
  });
}

/** Records keys to sync after commit, in `trx`; the entry to apply (and delete) once it committed. */
export async function recordOutbox(trx: Knex.Transaction, tables: MigrationTables, direction: Direction, keys: readonly (readonly unknown[])[]): Promise<OutboxEntry> {
  const { name: migration, source: table } = tables.migration;
  const entry: OutboxEntry = { id: randomUUID(), migration, table, direction, keys: keys.map((key) => [...key]) };
  await trx(OUTBOX_TABLE).insert({ id: entry.id, migration, source_table: table, direction, key_list: encodeKeys(entry.keys), created_at: Date.now() });
  return entry;
}

export async function deleteOutbox(db: Knex, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await db(OUTBOX_TABLE).whereIn('id', [...ids]).del();
}

/** The oldest entries of `parts` waiting on `shard` (none when the shard has no outbox yet). */
export async function readOutbox(databases: ShardDatabases, shard: string, parts: readonly MigrationTables[], limit: number): Promise<OutboxEntry[]> {
  const db = databases.primary(shard);
  if (!(await db.schema.hasTable(OUTBOX_TABLE))) return [];
  const rows: { id: string; migration: string; source_table: string; direction: string; key_list: string }[] = await ofParts(db, parts)
    .orderBy('created_at')
    .limit(limit);
  return rows.map((row) => ({ id: row.id, migration: row.migration, table: row.source_table, direction: row.direction as Direction, keys: decodeKeys(row.key_list) }));
}

/** How many entries of `parts` wait on `shard`; only those among `ids` when given. */
export async function countOutbox(databases: ShardDatabases, shard: string, parts: readonly MigrationTables[], ids?: readonly string[]): Promise<number> {
  const db = databases.primary(shard);
  if (ids?.length === 0 || !(await db.schema.hasTable(OUTBOX_TABLE))) return 0;
  let total = 0;
  for (const slice of ids ? chunks(ids, 1000) : [undefined]) {
    const query = ofParts(db, parts);
    const [row] = await (slice ? query.whereIn('id', [...slice]) : query).count({ n: '*' });
    total += Number(row?.n ?? 0);
  }
  return total;
}

/** The ids of every entry of `parts` waiting on `shard` now. */
export async function outboxIds(databases: ShardDatabases, shard: string, parts: readonly MigrationTables[]): Promise<string[]> {
  const db = databases.primary(shard);
  if (!(await db.schema.hasTable(OUTBOX_TABLE))) return [];
  return (await ofParts(db, parts).select('id')).map((row: { id: string }) => row.id);
}

function ofParts(db: Knex, parts: readonly MigrationTables[]): Knex.QueryBuilder {
  return db(OUTBOX_TABLE).whereIn(['migration', 'source_table'], parts.map(({ migration }) => [migration.name, migration.source]) as never);
}

/** Key values keep their type through JSON: BigInt, Date and Buffer are tagged. */
function encodeKeys(keys: readonly (readonly unknown[])[]): string {
  return JSON.stringify(
    keys.map((key) =>
      key.map((value) => {
        if (typeof value === 'bigint') return { $n: value.toString() };
        if (value instanceof Date) return { $d: value.toISOString() };
        if (Buffer.isBuffer(value)) return { $b: value.toString('hex') };
        return value;
      }),
    ),
  );
}

function decodeKeys(text: string): unknown[][] {
  return (JSON.parse(text) as unknown[][]).map((key) =>
    key.map((value) => {
      if (value === null || typeof value !== 'object') return value;
      const tagged = value as { $n?: string; $d?: string; $b?: string };
      if (tagged.$n !== undefined) return BigInt(tagged.$n);
      if (tagged.$d !== undefined) return new Date(tagged.$d);
      if (tagged.$b !== undefined) return Buffer.from(tagged.$b, 'hex');
      return value;
    }),
  );
}
