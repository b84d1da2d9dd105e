/**
 * Verify: proves the target holds exactly transform(source), chunk by chunk, and repairs what
 * differs. Two passes, both in keyset chunks per shard:
 *
 *   1. source chunks: the transformed rows against the target rows of the same keys; a chunk
 *      whose checksum matches is done, otherwise its rows are compared one by one
 *   2. target chunks: target rows whose source row does not exist (a row a backfill batch copied
 *      just before it was deleted) are found there
 *
 * Differences are repaired with key sync under the key's lock, from the side the application
 * writes (`direction`: the source until cutover, the target during cutover), so a race with a
 * write in flight is repaired harmlessly and no newer acknowledged write is overwritten. The outcome counts what was checked,
 * found, repaired and left; cutover requires a verify without unrepaired differences.
 */
import { createHash } from 'node:crypto';
import { whereAfter } from '../../engine/keyset-pagination.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import { checkedMap, type Direction, syncKeys } from './key-sync.js';
import type { MigrationTables, Side } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { canonical, keyOf, keyText, sameRow } from './row-identity.js';
import { readByKeys } from './shadow-read.js';

export interface VerifyOptions {
  chunkSize?: number;
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
    for (const shard of tables.shardsOf(side)) {
      const here = { rowsChecked: 0, differences: 0 };
      await eachChunk(databases, tables, side, shard, options, async (chunk) => {
        // Only rows that are copied at all, and on the target side only rows this shard should hold.
        const rows = chunk.filter((row) => {
          const key = keyOf(row, tables.migration.key);
          return tables.moves(key) && (side === 'source' || tables.ownerOf('target', key) === shard);
        });
        const differing = rows.length === 0 ? [] : side === 'source' ? await differingFromSource(databases, tables, rows) : await orphans(databases, tables, rows);
        outcome.chunks++;
        here.rowsChecked += rows.length;
        here.differences += differing.length;
        if (side === 'source') outcome.rowsChecked += rows.length;
        outcome.differences += differing.length;
        if (differing.length > 0 && options.repair !== false) {
          await syncKeys(databases, tables, options.direction ?? 'forward', differing);
          outcome.repaired += differing.length;
        } else {
          outcome.unrepaired += differing.length;
        }
        options.onProgress?.({ pass: side, shard, ...here, finished: false });
      });
      options.onProgress?.({ pass: side, shard, ...here, finished: true });
    }
  }
  return outcome;
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
      .orderBy(key.map((column) => ({ column, order: 'asc' })))
      .limit(options.chunkSize ?? 1000);
    if (rows.length === 0) return;
    await visit(rows);
    last = keyOf(rows.at(-1)!, key);
  }
}

/** Keys of source rows whose target row is missing or differs. */
async function differingFromSource(databases: ShardDatabases, tables: MigrationTables, sourceRows: readonly Row[]): Promise<unknown[][]> {
  const { migration } = tables;
  const expected = sourceRows.map((row) => checkedMap(migration.transform, row, migration.key, 'forward'));
  const keys = expected.map((row) => keyOf(row, migration.key));
  const targets = await readByKeys(databases, tables, 'target', keys);
  const actual = keys.map((key) => targets.get(keyText(key)));
  if (!migration.compare && checksum(expected, expected) === checksum(expected, actual)) return [];
  const compare = migration.compare ?? sameRow;
  return keys.filter((_, index) => {
    const target = actual[index];
    return !target || !compare(expected[index]!, target);
  });
}

/** Keys of target rows whose source row does not exist. */
async function orphans(databases: ShardDatabases, tables: MigrationTables, targetRows: readonly Row[]): Promise<unknown[][]> {
  const keys = targetRows.map((row) => keyOf(row, tables.migration.key));
  const sources = await readByKeys(databases, tables, 'source', keys);
  return keys.filter((key) => !sources.has(keyText(key)));
}

/** A digest of `rows` over the columns of `shape` (rows in the same order), for a whole-chunk comparison. */
function checksum(shape: readonly Row[], rows: readonly (Row | undefined)[]): string {
  const hash = createHash('sha256');
  rows.forEach((row, index) => {
    const columns = Object.keys(shape[index]!);
    hash.update(row ? columns.map((column) => canonical(row[column])).join('\u0001') : '\u0002missing');
    hash.update('\u0003');
  });
  return hash.digest('hex');
}
