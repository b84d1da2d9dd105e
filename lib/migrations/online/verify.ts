/**
 * Verify: proves the target holds exactly transform(source), chunk by chunk, and repairs what
 * differs. Two passes, both in keyset chunks per shard:
 *
 *   1. source chunks: the transformed rows against the target rows of the same keys; a chunk
 *      whose checksum matches is done, otherwise its rows are compared one by one
 *   2. target chunks: target rows whose source row does not exist (a row a backfill batch copied
 *      just before it was deleted) are found there
 *
 * A JavaScript transform is compared in JavaScript, every row read. Rows copied as they are (a
 * rebalance) are compared by checksums the servers compute, and read only where a chunk differs
 * (compare-checksums.ts).
 *
 * Differences are repaired with key sync under the key's lock, from the side the application
 * writes (`direction`: the source until cutover, the target during cutover), so a race with a
 * write in flight is repaired harmlessly and no newer acknowledged write is overwritten. The
 * outcome counts what was checked, found, repaired and left; cutover requires a verify without
 * unrepaired differences.
 */
import { whereAfter } from '../../engine/keyset-pagination.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import { compareChecksums } from './compare-checksums.js';
import { type Direction, syncKeys } from './key-sync.js';
import type { MigrationTables, Side } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { differingFromSource, orphans } from './row-differences.js';
import { keyOf } from './row-identity.js';
import { copyReads } from './copy-reads.js';
import { mapWithConcurrency } from '../../util/map-with-concurrency.js';

const DEFAULT_CONCURRENCY = 4;

export interface VerifyOptions {
  chunkSize?: number;
  /** A rebalance's verify walks every shard-key value even of tables with a slot column (compare-checksums.ts). */
  walkKeys?: boolean;
  /** Shards verified at once (default 4): each pass also reads the other shards, so all at once would load each node with one stream per shard. */
  concurrency?: number;
  /** Repair differences (default true); false only reports them. */
  repair?: boolean;
  /** Which side wins a repair: forward (the source, default) or backward (the target, in cutover). */
  direction?: Direction;
  signal?: AbortSignal;
  /** After each chunk, and with `finished` once a pass over a shard ends: that pass and shard's own counts. */
  onProgress?: (progress: VerifyProgress) => void;
}

export interface VerifyProgress {
  pass: Side;
  shard: string;
  /** Rows of this shard compared in this pass. */
  rowsChecked: number;
  /** Differences found on this shard in this pass. */
  differences: number;
  finished: boolean;
}

export interface VerifyOutcome {
  rowsChecked: number;
  chunks: number;
  differences: number;
  repaired: number;
  unrepaired: number;
}

export async function verifyMigration(databases: ShardDatabases, tables: MigrationTables, options: VerifyOptions = {}): Promise<VerifyOutcome> {
  const outcome: VerifyOutcome = { rowsChecked: 0, chunks: 0, differences: 0, repaired: 0, unrepaired: 0 };
  for (const side of ['source', 'target'] as const) {
    // A few shards of a pass at once; after a failure no other starts, and those running settle before it is reported.
    const passes = await mapWithConcurrency(tables.shardsOf(side), options.concurrency ?? DEFAULT_CONCURRENCY, (shard) => verifyShard(databases, tables, side, shard, options, outcome), {
      stopOnError: true,
    });
    const failed = passes.find((pass) => pass.status === 'rejected');
    if (failed) throw failed.reason;
  }
  return outcome;
}

/** One pass over one shard, its counts added to `outcome`. */
async function verifyShard(databases: ShardDatabases, tables: MigrationTables, side: Side, shard: string, options: VerifyOptions, outcome: VerifyOutcome): Promise<void> {
  const here = { rowsChecked: 0, differences: 0 };
  const settle = async (checked: number, differing: unknown[][]) => {
    outcome.chunks++;
    here.rowsChecked += checked;
    here.differences += differing.length;
    if (side === 'source') outcome.rowsChecked += checked;
    outcome.differences += differing.length;
    if (differing.length > 0 && options.repair !== false) {
      await syncKeys(databases, tables, options.direction ?? 'forward', differing);
      outcome.repaired += differing.length;
    } else {
      outcome.unrepaired += differing.length;
    }
    options.onProgress?.({ pass: side, shard, ...here, finished: false });
  };
  if (tables.copiedAsIs) {
    await compareChecksums(databases, tables, tables.copiedAsIs, side, shard, options, settle);
  } else {
    await eachChunk(databases, tables, side, shard, options, async (chunk) => {
      // Only rows that are copied at all, and on the target side only rows this shard should hold.
      const rows = chunk.filter((row) => {
        const key = keyOf(row, tables.migration.key);
        return tables.moves(key) && (side === 'source' || tables.ownerOf('target', key) === shard);
      });
      const differing = rows.length === 0 ? [] : side === 'source' ? await differingFromSource(databases, tables, rows) : await orphans(databases, tables, rows);
      await settle(rows.length, differing);
    });
  }
  options.onProgress?.({ pass: side, shard, ...here, finished: true });
}

async function eachChunk(
  databases: ShardDatabases,
  tables: MigrationTables,
  side: Side,
  shard: string,
  options: VerifyOptions,
  visit: (rows: Row[]) => Promise<void>,
): Promise<void> {
  const { key } = tables.migration;
  const keys = key.map((column) => ({ column }));
  const db = databases.primary(shard);
  let last: unknown[] | null = null;
  for (;;) {
    options.signal?.throwIfAborted();
    const rows: Row[] = await whereAfter(db(tables.tableOf(side)), keys, last)
      .options(copyReads(databases, tables, shard))
      .orderBy(key.map((column) => ({ column, order: 'asc' })))
      .limit(options.chunkSize ?? 1000);
    if (rows.length === 0) return;
    await visit(rows);
    last = keyOf(rows.at(-1)!, key);
  }
}
