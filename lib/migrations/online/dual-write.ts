/**
 * A write to a table in an online migration or a rebalance: refused if the phase does not
 * allow it, otherwise run together with its copy to the other side, one shard's part at a time
 * inside that shard's transaction (the kit's own for kit.table(), the application's for
 * kit.transaction()). The copy is never a step that can fail after the write was acknowledged:
 *
 *   a key whose rows on both sides live on the write's shard is copied in the same
 *   transaction (key-sync.ts), under its key lock taken before the write, so two writers of
 *   one key through the two tables (cutover) run one after the other and both tables end
 *   with the last committed write; a failed copy fails the write
 *
 *   a key whose other side lives on another shard is recorded in the sync outbox in the same
 *   transaction (sync-outbox.ts) and synced after the commit; if that sync fails, or the
 *   process dies, the entry stays and a drain applies it
 *
 * Which keys a write touched must be exact, or a row would miss its copy:
 *   insert           the keys of the rows inserted (the rows must carry the key columns)
 *   update / delete  the keys its condition selects, read before the write (to lock them), and
 *                    then exactly: PostgreSQL and PGlite RETURNING the key columns; MySQL/MariaDB,
 *                    which has no RETURNING, SELECT ... FOR UPDATE (next-key locks keep phantoms out)
 */
import type { Knex } from 'knex';
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { Row } from '../../config/online-migration.js';
import { combineWriteResults } from '../../engine/combine-results.js';
import { shardQuery, shardStatements } from '../../engine/shard-query.js';
import { MigrationPhaseError } from '../../errors.js';
import { type AnyQueryBuilder, bindToClient, copyBuilder, internalsOf } from '../../knex/builder-internals.js';
import { countInsertedRows } from '../../knex/guarded-client.js';
import type { QueryPlan } from '../../planner/query-plan.js';
import { copyLockedKeys, type Direction, lockSyncKeys, syncKeys } from './key-sync.js';
import type { MigrationTables, Side } from './migration-tables.js';
import { type Phase, sourceWritable, syncsBackward, syncsForward, targetWritable } from './phases.js';
import { keyOf, keyText } from './row-identity.js';
import { deleteOutbox, type OutboxEntry, recordOutbox } from './sync-outbox.js';

export interface Involvement {
  tables: MigrationTables;
  side: Side;
  phase: Phase;
}

/** A copy a write needs: of its keys, in one migration, one way. */
export interface DualWrite {
  tables: MigrationTables;
  direction: Direction;
}

/** Keys recorded in a shard's outbox, to sync once the transaction that recorded them committed. */
export interface PendingSync {
  shard: string;
  tables: MigrationTables;
  entry: OutboxEntry;
}

export interface ShardWrite {
  result: unknown;
  pending: PendingSync[];
}

/** The copies a write with `method` on a table so involved needs, after checking that the phases allow it. */
export function dualWritesOf(involved: readonly Involvement[], method: string): DualWrite[] {
  return involved.flatMap((entry) => {
    const direction = syncDirection(entry, method);
    return direction ? [{ tables: entry.tables, direction }] : [];
  });
}

function syncDirection({ tables, side, phase }: Involvement, method: string): Direction | undefined {
  const name = tables.migration.name;
  const table = tables.tableOf(side);
  if (side === 'source' && !sourceWritable(phase)) {
    throw new MigrationPhaseError(name, table, phase, 'the source table was retired at cleanup; write to the target');
  }
  if (side === 'target' && !targetWritable(phase)) {
    throw new MigrationPhaseError(name, table, phase, 'the target is written only by the migration until cutover; write to the source');
  }
  const direction = side === 'source' ? (syncsForward(phase) ? 'forward' : undefined) : syncsBackward(phase) ? 'backward' : undefined;
  if (direction && method === 'truncate') {
    throw new MigrationPhaseError(name, table, phase, 'truncate would bypass the dual write; delete with a condition instead');
  }
  return direction;
}

/** Runs `shard`'s part of the write in `trx`, with its copies (see above). */
export async function writeOnShard(
  databases: ShardDatabases,
  trx: Knex.Transaction,
  shard: string,
  plan: QueryPlan,
  builder: AnyQueryBuilder,
  dualWrites: readonly DualWrite[],
  maxParameters: number,
): Promise<ShardWrite> {
  const columns = [...new Set(dualWrites.flatMap(({ tables }) => tables.migration.key))];
  const family = databases.dialectOf(shard).family;
  const on = (query: AnyQueryBuilder) => bindToClient(query, trx.client) as Knex.QueryBuilder;
  const statements = plan.method === 'insert' ? shardStatements(builder, plan, shard, maxParameters) : [shardQuery(builder, plan, shard)];
  const before = plan.method === 'insert' ? insertedKeyRows(statements, columns, plan.table) : await on(keyProbe(statements[0]!)).select(columns);
  const locked = new Set<string>();
  const releases: (() => Promise<void>)[] = [];
  const lockLocal = async (rows: readonly Row[]) => {
    for (const { tables } of dualWrites) {
      const keys = uniqueKeys(rows, tables).filter((key) => isLocal(tables, shard, key) && !locked.has(lockName(tables, key)));
      for (const key of keys) locked.add(lockName(tables, key));
      if (keys.length > 0) releases.push(await lockSyncKeys(databases, tables, shard, trx, keys));
    }
  };
  try {
    await lockLocal(before);
    const returning = internalsOf(builder)._single.returning;
    const results: unknown[] = [];
    let touched: Row[] = [...before];
    if (plan.method === 'insert') {
      for (const statement of statements) results.push(await on(returning === undefined ? countInsertedRows(statement) : statement));
    } else if (family === 'mysql') {
      const probed: Row[] = await on(keyProbe(statements[0]!)).select(columns).forUpdate();
      // MySQL's UPDATE returns no rows: the keys an update gives its rows come from its SET.
      const assigned = plan.method === 'update' ? assignedKeyColumns(statements[0]!, columns, plan.table) : undefined;
      touched = assigned ? [...probed, ...probed.map((row) => ({ ...row, ...assigned }))] : probed;
      await lockLocal(touched);
      results.push(await on(statements[0]!));
    } else {
      const written: Row[] = await on(statements[0]!).returning(returnedColumns(returning, columns));
      touched = [...before, ...written];
      // A row the condition matched only after the probe (inserted meanwhile) is locked late.
      await lockLocal(written);
      results.push(returning === undefined ? written.length : written.map((row) => onlyRequested(row, returning)));
    }
    const pending: PendingSync[] = [];
    for (const { tables, direction } of dualWrites) {
      const keys = uniqueKeys(touched, tables);
      const local = keys.filter((key) => isLocal(tables, shard, key));
      const remote = keys.filter((key) => !isLocal(tables, shard, key));
      if (local.length > 0) await copyLockedKeys(databases, tables, direction, shard, trx, local);
      if (remote.length > 0) pending.push({ shard, tables, entry: await recordOutbox(trx, tables, direction, remote) });
    }
    return { result: combineWriteResults(plan.method, returning !== undefined, results), pending };
  } finally {
    for (const release of releases) await release();
  }
}

/** After the commit: syncs the outbox entries and deletes them. A failure leaves them for a drain. */
export async function applyPending(databases: ShardDatabases, pending: readonly PendingSync[]): Promise<void> {
  for (const { shard, tables, entry } of pending) {
    await syncKeys(databases, tables, entry.direction, entry.keys);
    await deleteOutbox(databases.primary(shard), [entry.id]);
  }
}

/** A key is copied in the write's transaction when its rows on both sides, and its lock, live on this shard. */
function isLocal(tables: MigrationTables, shard: string, key: readonly unknown[]): boolean {
  return tables.ownerOf('source', key) === shard && tables.ownerOf('target', key) === shard;
}

function lockName(tables: MigrationTables, key: readonly unknown[]): string {
  return `${tables.migration.name}\u0000${keyText(key)}`;
}

/** The keys of `tables`' migration among `rows`, once each, of rows whose copy is needed at all. */
function uniqueKeys(rows: readonly Row[], tables: MigrationTables): unknown[][] {
  const keys = rows.map((row) => keyOf(row, tables.migration.key)).filter((key) => tables.moves(key));
  return [...new Map(keys.map((key) => [keyText(key), key])).values()];
}

/** The statement's condition as a select of nothing yet: the caller picks the key columns. */
function keyProbe(query: AnyQueryBuilder): AnyQueryBuilder {
  const probe = copyBuilder(query);
  const internals = internalsOf(probe);
  internals._method = 'select';
  internals._statements = internals._statements.filter((statement) => statement.grouping !== 'columns');
  internals._single = { ...internals._single, update: undefined, counter: undefined, returning: undefined };
  return probe;
}

/**
 * The key columns an update assigns, with their values; undefined when it assigns none. A key
 * assigned an expression (a raw, a function) cannot be known before the statement runs: the
 * write is refused rather than its copy missed.
 */
function assignedKeyColumns(statement: AnyQueryBuilder, columns: readonly string[], table: string): Row | undefined {
  const update = (internalsOf(statement)._single.update ?? {}) as Row;
  const assigned = columns.filter((column) => column in update);
  if (assigned.length === 0) return undefined;
  for (const column of assigned) {
    const value = update[column];
    if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
      throw new MigrationPhaseError(table, table, 'dual write', `an update that sets the key column ${column} to an expression cannot be carried on MySQL: set it to a value`);
    }
  }
  return Object.fromEntries(assigned.map((column) => [column, update[column]]));
}

function insertedKeyRows(statements: readonly AnyQueryBuilder[], columns: readonly string[], table: string): Row[] {
  const rows = statements.flatMap((statement) => {
    const insert = internalsOf(statement)._single.insert;
    return insert === undefined ? [] : ((Array.isArray(insert) ? insert : [insert]) as Row[]);
  });
  rows.forEach((row, index) => {
    const missing = columns.filter((column) => row[column] === undefined);
    if (missing.length > 0) throw new MigrationPhaseError(table, table, 'dual write', `row ${index} of the insert lacks a key column (${missing.join(', ')})`);
  });
  return rows;
}

function returnedColumns(requested: unknown, keyColumns: readonly string[]): string[] | '*' {
  if (requested === '*') return '*';
  return [...new Set([...toArray(requested), ...keyColumns])];
}

function onlyRequested(row: Row, requested: unknown): Row {
  if (requested === '*') return row;
  const wanted = new Set(toArray(requested));
  return Object.fromEntries(Object.entries(row).filter(([column]) => wanted.has(column)));
}

function toArray(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}
