/**
 * A write to a table in an online migration: refused if the phase does not allow it, otherwise
 * run, and its keys synced to the other side after commit (see key-sync.ts).
 *
 * Which keys a write touched must be exact, or a row would miss its sync:
 *   insert           the keys of the rows inserted (the rows must carry the key columns)
 *   update / delete  PostgreSQL and PGlite: RETURNING the key columns; MySQL/MariaDB, which has no
 *                    RETURNING: in one transaction, SELECT the keys FOR UPDATE (next-key locks keep
 *                    phantoms out), then the write
 * A sync that fails after the write committed does not fail the write (it happened): it is
 * recorded as a mismatch, which blocks cutover until a verify repairs it.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../../config/config-types.js';
import { MigrationPhaseError } from '../../errors.js';
import { type AnyQueryBuilder, bindToClient, copyBuilder, internalsOf } from '../../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../../planner/query-plan.js';
import { shardQuery } from '../../engine/shard-query.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { Direction } from './key-sync.js';
import type { MigrationTables, Side } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import { type Phase, sourceWritable, syncsBackward, syncsForward, targetWritable } from './phases.js';
import { keyOf } from './row-identity.js';

export interface Involvement {
  tables: MigrationTables;
  side: Side;
  phase: Phase;
}

export interface CapturedWrite {
  result: unknown;
  keys: unknown[][];
}

/** The sync direction a write on `side` needs in `phase`, after checking that it may happen. */
export function syncDirection({ tables, side, phase }: Involvement, method: string): Direction | undefined {
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

/** Runs a write and returns the keys it touched (in the caller's scope: its priority and deadline). */
export async function writeCapturingKeys(
  databases: ShardDatabases,
  plan: QueryPlan,
  builder: AnyQueryBuilder,
  keyColumns: readonly string[],
  runNormally: () => Promise<unknown>,
): Promise<CapturedWrite> {
  if (plan.method === 'insert') {
    const rows = insertedRows(builder);
    const keys = rows.map((row, index) => {
      const key = keyOf(row, keyColumns);
      if (key.some((value) => value === undefined)) {
        throw new MigrationPhaseError(plan.table, plan.table, 'dual write', `row ${index} of the insert lacks a key column (${keyColumns.join(', ')})`);
      }
      return key;
    });
    return { result: await runNormally(), keys };
  }
  const shards = targetShards(plan.route);
  const parts = await Promise.all(
    shards.map((shard) => {
      return databases.primary(shard).transaction((trx) => writeOnShard(trx, shardQuery(builder, plan, shard), keyColumns, databases.dialectOf(shard).family));
    }),
  );
  const keys = parts.flatMap((part) => part.keys);
  const returning = internalsOf(builder)._single.returning;
  if (returning === undefined) return { result: parts.reduce((sum, part) => sum + part.count, 0), keys };
  return { result: parts.flatMap((part) => part.rows), keys };
}

interface ShardWrite {
  count: number;
  rows: Row[];
  keys: unknown[][];
}

async function writeOnShard(trx: Knex.Transaction, query: AnyQueryBuilder, keyColumns: readonly string[], family: SqlFamily): Promise<ShardWrite> {
  if (family === 'mysql') {
    const probe = copyBuilder(query);
    const internals = internalsOf(probe);
    internals._method = 'select';
    internals._statements = internals._statements.filter((statement) => statement.grouping !== 'columns');
    internals._single = { ...internals._single, update: undefined, counter: undefined };
    const locked: Row[] = await (bindToClient(probe, trx.client) as Knex.QueryBuilder).select([...keyColumns]).forUpdate();
    const count = (await bindToClient(query, trx.client)) as number;
    return { count, rows: [], keys: locked.map((row) => keyOf(row, keyColumns)) };
  }
  const requested = internalsOf(query)._single.returning;
  const returning = requested === '*' ? '*' : [...new Set([...toArray(requested), ...keyColumns])];
  const rows: Row[] = await (bindToClient(query, trx.client) as Knex.QueryBuilder).returning(returning as string[]);
  const keys = rows.map((row) => keyOf(row, keyColumns));
  const wanted = requested === undefined || requested === '*' ? undefined : new Set(toArray(requested));
  return {
    count: rows.length,
    rows: wanted ? rows.map((row) => Object.fromEntries(Object.entries(row).filter(([column]) => wanted.has(column)))) : rows,
    keys,
  };
}

function insertedRows(builder: AnyQueryBuilder): Row[] {
  const insert = internalsOf(builder)._single.insert;
  if (insert === undefined) return [];
  return (Array.isArray(insert) ? insert : [insert]) as Row[];
}

function toArray(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}
