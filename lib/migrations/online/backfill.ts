/**
 * Backfill: copies every source row to the target, shard by shard, in keyset batches
 * (`WHERE key > last ORDER BY key LIMIT n`: no OFFSET, no long transaction, no table lock).
 * Rows are written insert-if-absent, so a row the dual write already put in the target (newer
 * than the batch's copy) is never overwritten. A row deleted after its batch was read can still
 * be inserted by that batch: verify finds such rows (target rows without a source row) and
 * deletes them before cutover is allowed. After each batch the shard's checkpoint (last key,
 * rows) is saved, so a killed backfill resumes where it stopped. Between batches it waits while
 * a replica lags beyond `maxLagMs` or a target primary has queries queued (gh-ost's throttling),
 * and all shards together never copy faster than `maxRowsPerSecond` (one limiter shared by them).
 */
import { whereAfter } from '../../engine/keyset-pagination.js';
import { type RateLimiter, sleep } from '../../util/rate-limiter.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import { groupBy } from '../../util/group-by.js';
import type { BackfillCheckpoint } from './control-store.js';
import { checkedMap } from './key-sync.js';
import type { MigrationTables } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { keyOf } from './row-identity.js';

export interface BackfillOptions {
  batchSize?: number;
  maxRowsPerSecond?: number;
  signal?: AbortSignal;
  onProgress?: (progress: BackfillProgress) => void;
}

export interface BackfillProgress {
  shard: string;
  copied: number;
  total: number;
  done: boolean;
  /** Why the last wait happened, while throttled. */
  throttled?: string;
}

export interface BackfillHooks {
  /** Saves the checkpoint (serialised by the caller). */
  save(checkpoint: BackfillCheckpoint): Promise<void>;
  /** A reason to pause now (replica lag, load), or undefined. */
  throttle(): string | undefined;
  /** The rate every shard shares, when one was set. */
  rate?: RateLimiter;
}

const THROTTLE_PAUSE_MS = 100;

/** The source rows on a shard, counted once before copying, for progress and ETA. */
export async function countSourceRows(databases: ShardDatabases, tables: MigrationTables, shard: string): Promise<number> {
  const [counted] = (await databases.primary(shard)(tables.tableOf('source')).count('* as total')) as { total: unknown }[];
  return Number(counted?.total ?? 0);
}

export async function backfillShard(
  databases: ShardDatabases,
  tables: MigrationTables,
  shard: string,
  start: BackfillCheckpoint,
  totalRows: number,
  hooks: BackfillHooks,
  options: BackfillOptions,
): Promise<BackfillCheckpoint> {
  const { migration } = tables;
  const source = databases.primary(shard);
  const batchSize = options.batchSize ?? 1000;
  const keys = migration.key.map((column) => ({ column }));
  const order = migration.key.map((column) => ({ column, order: 'asc' as const }));
  const readAfter = (lastKey: BackfillCheckpoint['lastKey']): Promise<Row[]> => {
    const read = whereAfter(source(tables.tableOf('source')), keys, lastKey)
      .orderBy(order)
      .limit(batchSize)
      .then((rows: Row[]) => rows);
    // Awaited in the loop; a prefetch abandoned by an abort must not become an unhandled rejection.
    read.catch(() => undefined);
    return read;
  };
  let checkpoint = start;
  let next = checkpoint.done ? undefined : readAfter(checkpoint.lastKey);
  let saved = Promise.resolve();
  while (!checkpoint.done) {
    options.signal?.throwIfAborted();
    const reason = hooks.throttle();
    if (reason) {
      options.onProgress?.({ shard, copied: checkpoint.rows, total: totalRows, done: false, throttled: reason });
      await sleep(THROTTLE_PAUSE_MS, options.signal);
      continue;
    }
    const batch = await next!;
    await hooks.rate?.take(batch.length, options.signal);
    const done = batch.length < batchSize;
    const lastKey = batch.length > 0 ? keyOf(batch.at(-1)!, migration.key) : checkpoint.lastKey;
    // The next batch is read while this one is written, and a checkpoint is saved while the next is written.
    next = done ? undefined : readAfter(lastKey);
    const moving = batch.filter((row) => tables.moves(keyOf(row, migration.key)));
    if (moving.length > 0) await insertIfAbsent(databases, tables, moving.map((row) => checkedMap(migration.transform, row, migration.key, 'forward')));
    checkpoint = { lastKey, rows: checkpoint.rows + batch.length, done };
    await saved;
    saved = hooks.save(checkpoint);
    options.onProgress?.({ shard, copied: checkpoint.rows, total: totalRows, done: checkpoint.done });
  }
  await saved;
  return checkpoint;
}

/** Writes rows to their target shards, leaving rows that already exist untouched. */
async function insertIfAbsent(databases: ShardDatabases, tables: MigrationTables, rows: readonly Row[]): Promise<void> {
  await tables.beforeCopy?.(rows.map((row) => keyOf(row, tables.migration.key)));
  const byOwner = groupBy(rows, (row) => tables.ownerOf('target', keyOf(row, tables.migration.key)));
  await Promise.all(
    [...byOwner].map(([owner, group]) => {
      return databases.dialectOf(owner).insertMissing(databases.primary(owner), tables.tableOf('target'), group, tables.migration.key);
    }),
  );
}
