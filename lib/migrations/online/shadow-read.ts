/**
 * Shadow reads: for a sample of the source reads the application makes during shadow_read, the
 * target rows of the same keys are read and compared with the transformed source rows (or with
 * the migration's own comparator). The application already has its source result; this runs
 * beside it, as background work. A difference is recorded with its key in the control table,
 * where it gates cutover, only once nothing explains it (settledDifferences): a write whose copy
 * is still on its way shows as a difference for a moment, and must not shut cutover.
 */
import type { ShardDatabases } from '../../access/shard-databases.js';
import { chunks } from '../../util/chunks.js';
import { groupBy } from '../../util/group-by.js';
import { sleep } from '../../util/rate-limiter.js';
import type { ControlStore } from './control-store.js';
import { checkedMap, KEYS_PER_STATEMENT, whereKeys } from './key-sync.js';
import type { MigrationTables, Side } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { describeDifference, keyOf, keyText, sameRow } from './row-identity.js';
import { copyReads } from './copy-reads.js';
import { readOutbox } from './sync-outbox.js';

/** How long a difference may wait for the copies pending for its keys; past it, it is left to the drain and verify, not recorded. */
export const SETTLE_MS = 10_000;
/** Pauses between looks at keys whose copy is pending or whose source row changed meanwhile: doubling from the first to the last. */
const FIRST_PAUSE_MS = 50;
const LAST_PAUSE_MS = 1000;
/** Outbox entries read at a time to find those naming a key; a fuller outbox counts every key as pending. */
const OUTBOX_SCAN = 1000;

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
  settleMs = SETTLE_MS,
): Promise<ShadowOutcome> {
  const { key } = tables.migration;
  const keys = appRows
    .filter((row) => key.every((column) => row[column] !== undefined))
    .map((row) => keyOf(row, key))
    .filter((rowKey) => tables.moves(rowKey));
  if (keys.length === 0) return { compared: 0, mismatches: 0 };
  const suspects = await differingKeys(databases, tables, keys);
  if (suspects.length === 0) return { compared: keys.length, mismatches: 0 };
  const mismatches = await settledDifferences(databases, tables, suspects.map((suspect) => suspect.key), performance.now() + settleMs);
  for (const mismatch of mismatches) await store.recordMismatch(tables.migration.name, version, mismatch.key, mismatch.detail);
  return { compared: keys.length, mismatches: mismatches.length };
}

/**
 * The keys whose difference nothing explains. For each key: its source row is read; then no copy
 * may be pending for it (an outbox entry naming it on its source owner: a write whose copy to the
 * other shard has not been applied; a copy in the write's own transaction is never pending);
 * then its target row is read, and its source row again, which must not have changed. Every
 * write to the source before the first read has then reached the target (an entry is deleted
 * only after its copy is applied), and none came between the reads, so the target must be the
 * transformed source: a difference now is one. A key with a copy pending, or whose source row
 * changed between the reads, is looked at again; one still pending at `deadline` is left to
 * the drain (which runs before every phase change) and to verify.
 */
async function settledDifferences(databases: ShardDatabases, tables: MigrationTables, keys: readonly unknown[][], deadline: number) {
  const differing: { key: unknown[]; detail: string }[] = [];
  let open = [...keys];
  for (let pauseMs = FIRST_PAUSE_MS; open.length > 0 && performance.now() < deadline; pauseMs = Math.min(LAST_PAUSE_MS, pauseMs * 2)) {
    const before = await readByKeys(databases, tables, 'source', open);
    const pending = await keysPendingCopy(databases, tables, open);
    const ready = open.filter((key) => !pending.has(keyText(key)));
    const [target, after] = ready.length === 0 ? [new Map<string, Row>(), new Map<string, Row>()] : await readTargetThenSource(databases, tables, ready);
    const again = open.filter((key) => pending.has(keyText(key)));
    for (const key of ready) {
      const text = keyText(key);
      const source = before.get(text);
      if (!sameSource(source, after.get(text))) {
        again.push(key);
        continue;
      }
      const detail = differenceOf(tables, source, target.get(text));
      if (detail !== undefined) differing.push({ key, detail });
    }
    open = again;
    if (open.length > 0) await sleep(Math.min(pauseMs, Math.max(0, deadline - performance.now())), undefined);
  }
  return differing;
}

/** The target rows, then the source rows again: in this order, so that a write between the reads shows on the source. */
async function readTargetThenSource(databases: ShardDatabases, tables: MigrationTables, keys: readonly unknown[][]): Promise<[Map<string, Row>, Map<string, Row>]> {
  const target = await readByKeys(databases, tables, 'target', keys);
  return [target, await readByKeys(databases, tables, 'source', keys)];
}

function sameSource(before: Row | undefined, after: Row | undefined): boolean {
  if (!before || !after) return before === after;
  return sameRow(before, after) && sameRow(after, before);
}

/** The keys (as keyText) named by an outbox entry of the migration on their source owner; every key of an owner whose outbox holds more than a scan. */
async function keysPendingCopy(databases: ShardDatabases, tables: MigrationTables, keys: readonly unknown[][]): Promise<Set<string>> {
  const pending = new Set<string>();
  const byOwner = groupBy(keys, (key) => tables.ownerOf('source', key));
  await Promise.all(
    [...byOwner].map(async ([owner, group]) => {
      const entries = await readOutbox(databases, owner, [tables], OUTBOX_SCAN + 1);
      const named = entries.length > OUTBOX_SCAN ? group : entries.flatMap((entry) => entry.keys);
      for (const key of named) pending.add(keyText(key));
    }),
  );
  return pending;
}

/** Keys whose target row differs from the transformed source row, each side read once, now: the first look. */
async function differingKeys(databases: ShardDatabases, tables: MigrationTables, keys: readonly unknown[][]) {
  const [sourceRows, targetRows] = await Promise.all([readByKeys(databases, tables, 'source', keys), readByKeys(databases, tables, 'target', keys)]);
  const differing: { key: unknown[]; detail: string }[] = [];
  for (const key of keys) {
    const detail = differenceOf(tables, sourceRows.get(keyText(key)), targetRows.get(keyText(key)));
    if (detail !== undefined) differing.push({ key, detail });
  }
  return differing;
}

/** How the target row differs from the transformed source row (or the migration's comparator says so); undefined when it does not. */
function differenceOf(tables: MigrationTables, source: Row | undefined, target: Row | undefined): string | undefined {
  const { migration } = tables;
  const expected = source && checkedMap(migration.transform, source, migration.key, 'forward');
  if (!expected && !target) return undefined;
  if (expected && target && (migration.compare ?? sameRow)(expected, target)) return undefined;
  return describeDifference(expected, target);
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
