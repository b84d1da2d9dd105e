/**
 * Shadow reads: for a sample of the source reads the application makes during shadow_read, the
 * target rows of the same keys are read and compared with the transformed source rows (or with
 * the migration's own comparator). The application already has its source result; this runs
 * beside it. A difference is checked again a few times over about a second, both rows read
 * afresh each time, so that a write still syncing is not reported; what still differs is
 * recorded with its key in the control table, where it gates cutover.
 */
import type { ShardDatabases } from '../../access/shard-databases.js';
import { chunks } from '../../util/chunks.js';
import { groupBy } from '../../util/group-by.js';
import type { ControlStore } from './control-store.js';
import { checkedMap, KEYS_PER_STATEMENT, whereKeys } from './key-sync.js';
import type { MigrationTables, Side } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { describeDifference, keyOf, keyText, sameRow } from './row-identity.js';
import { copyReads } from './copy-reads.js';

/**
 * Pauses before each second look at a difference: a write still syncing (a dual write copies
 * after its commit, later still from the outbox under load) settles within them; a difference
 * that outlasts them all (~1.3 s) is recorded.
 */
const RECHECK_DELAYS_MS = [50, 250, 1000];

export interface ShadowOutcome {
  compared: number;
  mismatches: number;
}

export async function shadowCompare(
  databases: ShardDatabases,
  tables: MigrationTables,
  store: ControlStore,
  version: number,
  appRows: readonly Row[],
): Promise<ShadowOutcome> {
  const { key } = tables.migration;
  const keys = appRows
    .filter((row) => key.every((column) => row[column] !== undefined))
    .map((row) => keyOf(row, key))
    .filter((rowKey) => tables.moves(rowKey));
  if (keys.length === 0) return { compared: 0, mismatches: 0 };
  let suspects = await differingKeys(databases, tables, keys);
  for (const delayMs of RECHECK_DELAYS_MS) {
    if (suspects.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    suspects = await differingKeys(databases, tables, suspects.map((suspect) => suspect.key));
  }
  for (const mismatch of suspects) await store.recordMismatch(tables.migration.name, version, mismatch.key, mismatch.detail);
  return { compared: keys.length, mismatches: suspects.length };
}

/** Keys whose target row differs from the transformed source row, read now. */
async function differingKeys(databases: ShardDatabases, tables: MigrationTables, keys: readonly unknown[][]) {
  const { migration } = tables;
  const [sourceRows, targetRows] = await Promise.all([readByKeys(databases, tables, 'source', keys), readByKeys(databases, tables, 'target', keys)]);
  const compare = migration.compare ?? sameRow;
  const differing: { key: unknown[]; detail: string }[] = [];
  for (const key of keys) {
    const source = sourceRows.get(keyText(key));
    const target = targetRows.get(keyText(key));
    const expected = source && checkedMap(migration.transform, source, migration.key, 'forward');
    if (!expected && !target) continue;
    if (!expected || !target || !compare(expected, target)) differing.push({ key, detail: describeDifference(expected, target) });
  }
  return differing;
}

/** Rows of one side by key, read from each owning shard's primary. */
export async function readByKeys(databases: ShardDatabases, tables: MigrationTables, side: Side, keys: readonly unknown[][]): Promise<Map<string, Row>> {
  const byOwner = groupBy(keys, (key) => tables.ownerOf(side, key));
  const found = new Map<string, Row>();
  // Owners in parallel, each one's statements one after another: thousands of keys (a verify of
  // a key with many rows) must not become dozens of concurrent statements that the node sheds.
  await Promise.all(
    [...byOwner].map(async ([owner, group]) => {
      for (const slice of chunks(group, KEYS_PER_STATEMENT)) {
        const rows: Row[] = await whereKeys(databases.primary(owner)(tables.tableOf(side)), tables.migration.key, slice).options(copyReads(databases, tables, owner));
        for (const row of rows) found.set(keyText(keyOf(row, tables.migration.key)), row);
      }
    }),
  );
  return found;
}
