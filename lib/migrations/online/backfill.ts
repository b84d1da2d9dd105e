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
 *
 * A rebalance (rows copied as they are) walks the shard-key values instead, read from the key's
 * index alone, and reads the rows of the values that move only: its batches and checkpoints count
 * shard-key values. On a table with a slot column it lists only the values that move, from the
 * slot index, by the runs of slots the shard gives away. Those rows are read in pages of at most
 * MOVING_ROWS_PAGE (by primary key), so a batch of values with many rows each (a user's orders)
 * never sits in memory at once.
 */
import { whereAfter } from '../../engine/keyset-pagination.js';
import { type KeyPosition, keyValuesFrom } from './key-values.js';
import { type RateLimiter, sleep } from '../../util/rate-limiter.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import { groupBy } from '../../util/group-by.js';
import type { BackfillCheckpoint } from './control-store.js';
import { checkedMap } from './key-sync.js';
import type { CopiedAsIs, MigrationTables, SlotSelection } from './migration-tables.js';
import { keySlotsInSlots } from '../../dialect/slot-column.js';
import { countKeysToWalk } from './slot-key-count.js';
import { groupRuns, runsFrom, slotsIn } from '../../hashing/slot-runs.js';
import type { Row } from '../../config/online-migration.js';
import { keyOf } from './row-identity.js';
import { copyReads } from './copy-reads.js';
import { isCopyConflict } from '../../dialect/copy-stream.js';

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
/**
 * Shard-key values per batch of a rebalance, by default: per-batch costs (listing the keys, a
 * COPY each way, a merge, a checkpoint) held 5,000-key batches to ~0.47x a plain COPY, 10,000 to
 * ~0.57x (docs/rebalance.md); the rows stream from server to server, so memory grows little.
 */
const COPIED_AS_IS_BATCH = 10000;
/**
 * Rows per batch of a migration between two tables, by default: per-batch costs (a statement
 * each way, a COPY's start, a checkpoint) cost 1000-row batches a quarter of their speed
 * (docs/online-migrations.md); lower it for wide rows, since two batches a shard sit in memory.
 */
const TABLE_MIGRATION_BATCH = 5000;
/** Rows of a rebalance's moving values read (and written) at a time. */
const MOVING_ROWS_PAGE = 5000;

/**
 * The source rows on a shard, counted once before copying, for progress and ETA; for a copy as
 * is (a rebalance), its shard-key values, which is what its batches walk: on a table with a slot
 * column only those of the slots the shard gives away, once every row has its slot (estimated
 * when the count is slow: slot-key-count.ts).
 */
export async function countSourceRows(databases: ShardDatabases, tables: MigrationTables, shard: string): Promise<number> {
  const db = databases.primary(shard);
  const table = tables.tableOf('source');
  const slots = tables.copiedAsIs?.slots;
  if (slots) {
    await slots.fillMissing(shard);
    const runs = [...slots.runsOf('source', shard).values()].flat();
    return (await countKeysToWalk(db, databases.dialectOf(shard).family, { table, shardKey: tables.copiedAsIs!.shardKey, column: slots.column, runs })).keys;
  }
  const count = tables.copiedAsIs ? db(table).countDistinct({ total: tables.copiedAsIs.shardKey }) : db(table).count('* as total');
  const [counted] = (await count) as { total: unknown }[];
  return Number(counted?.total ?? 0);
}

/** Where a walk stands: after a key, or (a walk by slot runs) before a slot. */
type WalkPosition = Pick<BackfillCheckpoint, 'lastKey' | 'slot'>;

/** One batch: the rows to copy, how many source rows (or shard-key values) it walked, and where it ended. */
interface Batch {
  rows: Row[];
  /** The batch's further rows, page by page, when the first page did not hold them all. */
  more?: () => AsyncGenerator<Row[]>;
  /** Moving shard-key values whose rows the databases stream to their new owners themselves (instead of `rows`). */
  stream?: unknown[];
  walked: number;
  end: WalkPosition;
  /** Nothing follows this batch. */
  last: boolean;
}

type ReadBatch = (after: WalkPosition) => Promise<Batch>;

/** Every source row in key order, the moving ones kept. */
function rowBatches(databases: ShardDatabases, tables: MigrationTables, shard: string, batchSize: number): ReadBatch {
  const { key } = tables.migration;
  const source = databases.primary(shard);
  return async ({ lastKey: after }) => {
    const rows: Row[] = await whereAfter(source(tables.tableOf('source')), key.map((column) => ({ column })), after)
      .options(copyReads(databases, tables, shard))
      .orderBy(key.map((column) => ({ column, order: 'asc' as const })))
      .limit(batchSize);
    const lastKey = rows.length > 0 ? keyOf(rows.at(-1)!, key) : after;
    return { rows: rows.filter((row) => tables.moves(keyOf(row, key))), walked: rows.length, end: { lastKey }, last: rows.length < batchSize };
  };
}

/**
 * A copy as is (a rebalance): the shard-key values in order, read from the key's index alone, and
 * only the rows of those that move, so the rows that stay are never read into Node.
 */
function movingRowBatches(databases: ShardDatabases, tables: MigrationTables, copy: CopiedAsIs, shard: string, batchSize: number): ReadBatch {
  const source = databases.primary(shard);
  const table = tables.tableOf('source');
  const { key } = tables.migration;
  return async (after) => {
    // A checkpoint of a walk by slots (the slot column was dropped meanwhile) starts over.
    const values = await keyValuesFrom(source, databases.dialectOf(shard).family, table, copy.shardKey, after.slot === undefined ? resumeAt(after.lastKey, key.indexOf(copy.shardKey)) : null, batchSize);
    const moving = movingOnes(copy, values);
    const end = { lastKey: values.length > 0 ? [values.at(-1)] : after.lastKey };
    return { ...(await copyOf(databases, tables, shard, copy, moving)), walked: values.length, end, last: values.length < batchSize };
  };
}

/**
 * A copy as is of a table with a slot column: the slot runs the shard gives away, a group at a
 * time, whose keys come from the (slot, key) index; nothing of the rows that stay is read. A
 * group spans about `batchSize` keys: keys hash uniformly over the slots, and `movingKeys` is
 * how many the runs hold (countSourceRows).
 */
function slotRunBatches(databases: ShardDatabases, tables: MigrationTables, copy: CopiedAsIs, slots: SlotSelection, shard: string, batchSize: number, movingKeys: number): ReadBatch {
  const source = databases.primary(shard);
  const family = databases.dialectOf(shard).family;
  const table = tables.tableOf('source');
  const runs = [...slots.runsOf('source', shard).values()].flat().sort((a, b) => a.first - b.first);
  // No key counted (an empty table when the backfill began): a key per slot, as a guess that keeps a batch small.
  const slotsPerKey = movingKeys > 0 ? slotsIn(runs) / movingKeys : 1;
  return async (after) => {
    // A checkpoint of a walk by keys (the slot column was added meanwhile) starts over: copies are insert-if-absent.
    const [group] = groupRuns(runsFrom(runs, after.slot ?? 0), batchSize * slotsPerKey, Number.POSITIVE_INFINITY);
    if (!group) return { rows: [], walked: 0, end: after, last: true };
    const end = group.at(-1)!.last + 1;
    const listed = await keySlotsInSlots(source, family, table, copy.shardKey, slots.column, group);
    const keys = [...new Set(listed.map(({ key }) => key))];
    // A row whose slot was written wrong past the kit gets its key's slot before anything is
    // copied: a copy streams with the slot it has, and one of a key that does not move would
    // otherwise stay hidden by the run's markers and be listed by verify.
    const ownSlots = slots.slotsOf(keys).slots;
    const own = new Map(keys.map((key, index) => [key, ownSlots[index]]));
    const wrong = [...new Set(listed.filter(({ key, slot }) => own.get(key) !== slot).map(({ key }) => key))];
    if (wrong.length > 0) await slots.restamp(shard, wrong);
    const moving = movingOnes(copy, keys);
    return { ...(await copyOf(databases, tables, shard, copy, moving)), walked: keys.length, end: { lastKey: null, slot: end }, last: runsFrom(runs, end).length === 0 };
  };
}

/** The shard-key values whose owner changes. */
function movingOnes(copy: CopiedAsIs, values: readonly unknown[]): unknown[] {
  return values.filter((value) => {
    const owners = copy.ownersOf(value);
    return owners.source !== owners.target;
  });
}

/**
 * How a batch of moving shard-key values is copied: streamed by the databases where every
 * owner's dialect can (PostgreSQL's COPY), or read into Node.
 */
async function copyOf(databases: ShardDatabases, tables: MigrationTables, shard: string, copy: CopiedAsIs, moving: unknown[]): Promise<Pick<Batch, 'rows' | 'more' | 'stream'>> {
  const streams = [shard, ...tables.shardsOf('target')].every((owner) => databases.dialectOf(owner).streamRows !== undefined);
  return streams ? { rows: [], stream: moving } : rowsOfKeys(databases, tables, shard, copy, moving);
}

/**
 * The rows of some shard-key values, a first page and, when there are more, the rest page by
 * page (by primary key), at most MOVING_ROWS_PAGE values to a statement.
 */
async function rowsOfKeys(databases: ShardDatabases, tables: MigrationTables, shard: string, copy: CopiedAsIs, values: readonly unknown[]): Promise<Pick<Batch, 'rows' | 'more'>> {
  const source = databases.primary(shard);
  const table = tables.tableOf('source');
  const { key } = tables.migration;
  const page = (some: readonly unknown[], afterRow: unknown[] | null): Promise<Row[]> =>
    whereAfter(source(table).whereIn(copy.shardKey, some as never[]), key.map((column) => ({ column })), afterRow)
      .options(copyReads(databases, tables, shard))
      .orderBy(key.map((column) => ({ column, order: 'asc' as const })))
      .limit(MOVING_ROWS_PAGE);
  const pieces: (readonly unknown[])[] = [];
  for (let start = 0; start < values.length; start += MOVING_ROWS_PAGE) pieces.push(values.slice(start, start + MOVING_ROWS_PAGE));
  const rows = pieces.length === 0 ? [] : await page(pieces[0]!, null);
  if (rows.length < MOVING_ROWS_PAGE && pieces.length <= 1) return { rows };
  async function* more(): AsyncGenerator<Row[]> {
    for (const [index, piece] of pieces.entries()) {
      let last = index === 0 ? rows.at(-1) : undefined;
      if (index === 0 && rows.length < MOVING_ROWS_PAGE) continue;
      for (;;) {
        const next = await page(piece, last ? keyOf(last, key) : null);
        if (next.length > 0) yield next;
        if (next.length < MOVING_ROWS_PAGE) break;
        last = next.at(-1)!;
      }
    }
  }
  return { rows, more };
}

/**
 * Where a walk of shard-key values resumes: after the checkpoint's value. A checkpoint of an
 * earlier release holds the whole primary key: the walk goes on at its shard-key value, so that
 * the rows of that value it had not reached yet are copied (again for those it had:
 * insert-if-absent).
 */
function resumeAt(after: BackfillCheckpoint['lastKey'], shardKeyIndex: number): KeyPosition | null {
  if (!after) return null;
  return after.length === 1 ? { value: after[0], inclusive: false } : { value: after[shardKeyIndex], inclusive: true };
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
  // A rebalance's batch is of shard-key values, of which only the moving ones (a few) are copied.
  const batchSize = options.batchSize ?? (tables.copiedAsIs ? COPIED_AS_IS_BATCH : TABLE_MIGRATION_BATCH);
  const copy = tables.copiedAsIs;
  const read = !copy
    ? rowBatches(databases, tables, shard, batchSize)
    : copy.slots
      ? slotRunBatches(databases, tables, copy, copy.slots, shard, batchSize, totalRows)
      : movingRowBatches(databases, tables, copy, shard, batchSize);
  const readAfter = (position: WalkPosition): Promise<Batch> => {
    const batch = read(position);
    // Awaited in the loop; a prefetch abandoned by an abort must not become an unhandled rejection.
    batch.catch(() => undefined);
    return batch;
  };
  let checkpoint = start;
  let next = checkpoint.done ? undefined : readAfter(checkpoint);
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
    // The rate is of rows copied (for a migration between two tables: every row walked).
    await hooks.rate?.take(batch.rows.length, options.signal);
    const done = batch.last;
    // The next batch is read while this one is written, and a checkpoint is saved while the next is written.
    next = done ? undefined : readAfter(batch.end);
    const write = (rows: readonly Row[]) => insertIfAbsent(databases, tables, rows.map((row) => checkedMap(migration.transform, row, migration.key, 'forward')));
    const writeAll = async (first: readonly Row[], more: Batch['more']) => {
      if (first.length > 0) await write(first);
      // The rest of a batch's rows, page by page; the checkpoint moves past the batch once all are written.
      if (more) {
        for await (const page of more()) {
          options.signal?.throwIfAborted();
          await hooks.rate?.take(page.length, options.signal);
          await write(page);
        }
      }
    };
    if (batch.stream && tables.copiedAsIs) {
      await streamMoving(databases, tables, tables.copiedAsIs, shard, batch.stream, async (values) => {
        const { rows, more } = await rowsOfKeys(databases, tables, shard, tables.copiedAsIs!, values);
        await writeAll(rows, more);
      }, hooks.rate, options.signal);
    } else {
      await writeAll(batch.rows, batch.more);
    }
    checkpoint = { ...batch.end, rows: checkpoint.rows + batch.walked, done };
    await saved;
    saved = hooks.save(checkpoint);
    options.onProgress?.({ shard, copied: checkpoint.rows, total: totalRows, done: checkpoint.done });
  }
  await saved;
  return checkpoint;
}

/**
 * Streams the rows of moving shard-key values to their new owners (dialect/copy-stream.ts),
 * marked first; a new owner that already holds one of a batch's rows (dual-written meanwhile)
 * stored nothing of it, and `carefully` copies that part insert-if-absent instead. The rate is
 * paid for the rows each stream carried, once it did.
 */
async function streamMoving(
  databases: ShardDatabases,
  tables: MigrationTables,
  copy: CopiedAsIs,
  shard: string,
  listed: readonly unknown[],
  carefully: (values: readonly unknown[]) => Promise<void>,
  rate: RateLimiter | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  // A key listed twice (its rows in two runs, slots written past the kit) is streamed once.
  const values = [...new Set(listed)];
  if (values.length === 0) return;
  await copy.markMoving(values);
  // Rows of one key with several rows (a composite primary key) may hold another slot than the
  // one that listed the key, written past the kit: they get theirs, or the run markers would not hide them.
  if (copy.slots && tables.migration.key.length > 1) await copy.slots.restamp(shard, values);
  const table = tables.tableOf('source');
  const stream = databases.dialectOf(shard).streamRows!;
  await Promise.all(
    [...groupBy(values, (value) => copy.ownersOf(value).target)].map(async ([owner, some]) => {
      try {
        const rows = await stream(databases.primary(shard), databases.primary(owner), table, copy.shardKey, some);
        await rate?.take(rows, signal);
      } catch (error) {
        if (!isCopyConflict(error)) throw error;
        await carefully(some);
      }
    }),
  );
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
