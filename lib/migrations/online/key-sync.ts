/**
 * Key sync: makes the other side of a migration hold exactly what one side holds for some keys.
 * It is the one primitive behind dual writes (forward: source -> target, after every source
 * write), reverse dual writes during cutover (backward), and verify's repairs.
 *
 * For each key, under a per-key advisory lock taken on the shard that owns the key's source row
 * (in both directions, so that every sync of a key is serialised by one lock): read the current
 * state of the row on the side being copied, then upsert its mapped row on the other side, or
 * delete it there if the row no longer exists. Each sync reads the latest committed state under
 * the lock, so the last sync of a key copies the latest state whatever order writers commit in:
 * no lost update, no resurrected delete. Rows on the locking shard are read and written in its
 * transaction. (Two instances writing one row through both tables at the same moment during
 * cutover resolve to whichever sync runs last: write each row through one table at a time.)
 */
import type { Knex } from 'knex';
import type { ReleaseLock } from '../../dialect/advisory-locks.js';
import { writable } from '../../dialect/exact-temporal.js';
import { ConfigError } from '../../errors.js';
import { loadKeyHasher } from '../../hashing/key-hasher.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { MigrationTables, Side } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { chunks } from '../../util/chunks.js';
import { groupBy } from '../../util/group-by.js';
import { canonical, keyOf, keyText } from './row-identity.js';
import { copyReads } from './copy-reads.js';

export type Direction = 'forward' | 'backward';

export interface SyncResult {
  upserted: number;
  deleted: number;
}

const SIDES: Record<Direction, { from: Side; to: Side }> = {
  forward: { from: 'source', to: 'target' },
  backward: { from: 'target', to: 'source' },
};

export async function syncKeys(
  databases: ShardDatabases,
  tables: MigrationTables,
  direction: Direction,
  keys: readonly (readonly unknown[])[],
): Promise<SyncResult> {
  const unique = [...new Map(keys.filter((key) => tables.moves(key)).map((key) => [keyText(key), key])).values()];
  if (unique.length === 0) return { upserted: 0, deleted: 0 };
  await tables.beforeCopy?.(unique);
  const bySourceShard = groupBy(unique, (key) => tables.ownerOf('source', key));
  const results = await Promise.all(
    [...bySourceShard].map(async ([shard, shardKeys]) => {
      let synced: SyncResult = { upserted: 0, deleted: 0 };
      for (const slice of chunks(shardKeys, KEYS_PER_STATEMENT)) {
        const result = await syncOnShard(databases, tables, direction, shard, slice);
        synced = { upserted: synced.upserted + result.upserted, deleted: synced.deleted + result.deleted };
      }
      return synced;
    }),
  );
  return results.reduce((total, result) => ({ upserted: total.upserted + result.upserted, deleted: total.deleted + result.deleted }), {
    upserted: 0,
    deleted: 0,
  });
}

async function syncOnShard(
  databases: ShardDatabases,
  tables: MigrationTables,
  direction: Direction,
  shardName: string,
  keys: readonly (readonly unknown[])[],
): Promise<SyncResult> {
  return databases.primary(shardName).transaction(async (trx) => {
    const release = await lockSyncKeys(databases, tables, shardName, trx, keys);
    try {
      return await copyLockedKeys(databases, tables, direction, shardName, trx, keys);
    } finally {
      await release();
    }
  });
}

/** Takes the sync locks of `keys` in `trx` on `shard`, the shard that owns their source rows. */
export async function lockSyncKeys(
  databases: ShardDatabases,
  tables: MigrationTables,
  shard: string,
  trx: Knex.Transaction,
  keys: readonly (readonly unknown[])[],
): Promise<ReleaseLock> {
  const hasher = await loadKeyHasher();
  const lockIds = keys.map((key) => hasher.hash64Signed(`${tables.migration.name}\u0000${keyText(key)}`));
  return databases.dialectOf(shard).locks.lockKeys(trx, lockIds);
}

/**
 * Copies `keys` from one side to the other, their locks held in `trx` on `shard`. Rows on
 * `shard` are read with FOR UPDATE: a locking read waits for a writer that changed the row in a
 * transaction still open (MySQL's key locks end before its commit) and reads what it committed.
 */
export async function copyLockedKeys(
  databases: ShardDatabases,
  tables: MigrationTables,
  direction: Direction,
  shard: string,
  trx: Knex.Transaction,
  keys: readonly (readonly unknown[])[],
): Promise<SyncResult> {
  const { migration } = tables;
  const { from, to } = SIDES[direction];
  const map = direction === 'forward' ? migration.transform : migration.reverse;
  const on = (owner: string) => (owner === shard ? trx : databases.primary(owner));
  const reads = [...groupBy(keys, (key) => tables.ownerOf(from, key))].map(([owner, group]) => {
    const read = whereKeys(on(owner)(tables.tableOf(from)), migration.key, group).options(copyReads(databases, tables, owner));
    return owner === shard ? read.forUpdate() : read;
  });
  const rows: Row[] = (await Promise.all(reads)).flat();
  const present = new Set(rows.map((row) => keyText(keyOf(row, migration.key))));
  const mapped = rows.map((row) => checkedMap(map, row, migration.key, direction));
  const absent = keys.filter((key) => !present.has(keyText(key)));
  const writes: Promise<unknown>[] = [];
  for (const [owner, group] of groupBy(mapped, (row) => tables.ownerOf(to, keyOf(row, migration.key)))) {
    writes.push(on(owner)(tables.tableOf(to)).insert(group.map(writable)).onConflict(migration.key).merge());
  }
  for (const [owner, group] of groupBy(absent, (key) => tables.ownerOf(to, key))) {
    writes.push(whereKeys(on(owner)(tables.tableOf(to)), migration.key, group).del());
  }
  await Promise.all(writes);
  return { upserted: mapped.length, deleted: absent.length };
}

/**
 * Keys per `IN` list. Multi-column lists expand to nested ORs in the planner; PGlite fails on
 * lists of about 280 pairs, and long ones are slow everywhere.
 */
export const KEYS_PER_STATEMENT = 200;

/** `WHERE key IN (...)`, for one key column or several. */
export function whereKeys(query: Knex.QueryBuilder, columns: readonly string[], keys: readonly (readonly unknown[])[]): Knex.QueryBuilder {
  if (columns.length === 1) return query.whereIn(columns[0]!, keys.map((key) => key[0]) as never[]);
  return query.whereIn([...columns], keys.map((key) => [...key]) as never);
}

/** The mapped row, which must keep the key: otherwise the two sides could never be matched. */
export function checkedMap(map: (row: Row) => Row, row: Row, key: readonly string[], direction: Direction): Row {
  const mapped = map(row);
  for (const column of key) {
    if (mapped[column] !== row[column] && canonical(mapped[column]) !== canonical(row[column])) {
      const fn = direction === 'forward' ? 'transform' : 'reverse';
      throw new ConfigError([{ path: `onlineMigrations.${fn}`, message: `must keep key column "${column}" unchanged` }]);
    }
  }
  return mapped;
}
