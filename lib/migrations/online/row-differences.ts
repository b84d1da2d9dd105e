/**
 * Row-by-row comparison of copied rows, for verify: which source rows' copies are missing or
 * differ, and which copies have no source row left. Both sides are read by key.
 */
import { createHash } from 'node:crypto';
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { Row } from '../../config/online-migration.js';
import { checkedMap } from './key-sync.js';
import type { MigrationTables } from './migration-tables.js';
import { canonical, keyOf, keyText, sameRow } from './row-identity.js';
import { readByKeys } from './shadow-read.js';

/** Keys of source rows whose target row is missing or differs. */
export async function differingFromSource(databases: ShardDatabases, tables: MigrationTables, sourceRows: readonly Row[]): Promise<unknown[][]> {
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
export async function orphans(databases: ShardDatabases, tables: MigrationTables, targetRows: readonly Row[]): Promise<unknown[][]> {
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
