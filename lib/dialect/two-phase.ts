/**
 * Two-phase commit as each database offers it, behind one interface (transactions/ drives it):
 *
 *   PostgreSQL   BEGIN ... PREPARE TRANSACTION 'gid'; later COMMIT PREPARED / ROLLBACK PREPARED
 *                'gid' from any session of the same database; pg_prepared_xacts lists them
 *                (the server needs max_prepared_transactions > 0)
 *   MySQL/MariaDB  XA START 'gid' ... XA END; XA PREPARE; later XA COMMIT / XA ROLLBACK from any
 *                session of the server; XA RECOVER lists them
 *
 * PGlite has none (no prepared transactions): the dialect leaves it undefined.
 *
 * Transaction ids cannot be bound parameters in either dialect, so they are written into the
 * SQL: `literal` accepts only the ids transactions/ makes (letters, digits, dashes).
 */
import type { Knex } from 'knex';
import { driverCodeOf } from '../errors.js';
import type { HeldConnection } from '../knex/connections.js';

export type IsolationLevel = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

export interface PreparedTransaction {
  gid: string;
  /** When it was prepared (ms since the epoch), where the database says. */
  preparedAt: number | undefined;
}

/** Where a decided transaction's COMMIT/ROLLBACK PREPARED runs: a pool (recovery) or the held connection. */
export interface SqlRunner {
  raw(sql: string, bindings: readonly unknown[]): PromiseLike<unknown>;
}

export interface TwoPhaseCommit {
  /** Opens the participant on a held connection. */
  begin(held: HeldConnection, gid: string, isolation: IsolationLevel | undefined): Promise<void>;
  /** Prepares it: from here it survives the session and a server restart until decided. */
  prepare(held: HeldConnection, gid: string): Promise<void>;
  /** Commits a participant that is the only one (no prepare needed). */
  commitOnePhase(held: HeldConnection, gid: string): Promise<void>;
  /** Rolls back a participant that was not prepared, on its connection. */
  rollbackOpen(held: HeldConnection, gid: string): Promise<void>;
  /**
   * MySQL/MariaDB keep a prepared XA transaction attached to its session until it is decided or
   * the session ends: its coordinator decides on the same connection, recovery on any.
   */
  commitPrepared(on: SqlRunner, gid: string): Promise<void>;
  rollbackPrepared(on: SqlRunner, gid: string): Promise<void>;
  /** Prepared transactions of this database (PostgreSQL) or server (MySQL/MariaDB). */
  listPrepared(db: Knex): Promise<PreparedTransaction[]>;
  /** The error says the prepared transaction does not exist (already decided by someone else). */
  isUnknownTransaction(error: unknown): boolean;
}

const SAFE_GID = /^[A-Za-z0-9-]{1,64}$/;

function literal(gid: string): string {
  if (!SAFE_GID.test(gid)) throw new Error(`not a transaction id shardkit makes: ${JSON.stringify(gid.slice(0, 80))}`);
  return `'${gid}'`;
}

export const postgresTwoPhase: TwoPhaseCommit = {
  async begin(held, _gid, isolation) {
    await held.raw(isolation ? `begin isolation level ${isolation}` : 'begin', []);
  },
  async prepare(held, gid) {
    await held.raw(`prepare transaction ${literal(gid)}`, []);
  },
  async commitOnePhase(held) {
    await held.raw('commit', []);
  },
  async rollbackOpen(held) {
    await held.raw('rollback', []);
  },
  async commitPrepared(on, gid) {
    await on.raw(`commit prepared ${literal(gid)}`, []);
  },
  async rollbackPrepared(on, gid) {
    await on.raw(`rollback prepared ${literal(gid)}`, []);
  },
  async listPrepared(db) {
    const result = (await db.raw('select gid, prepared from pg_prepared_xacts where database = current_database()')) as { rows: { gid: string; prepared: Date | string }[] };
    return result.rows.map((row) => ({ gid: row.gid, preparedAt: new Date(row.prepared).getTime() }));
  },
  // 42704: undefined_object ("prepared transaction with identifier ... does not exist").
  isUnknownTransaction: (error) => driverCodeOf(error) === '42704',
};

export const mysqlTwoPhase: TwoPhaseCommit = {
  async begin(held, gid, isolation) {
    if (isolation) await held.raw(`set transaction isolation level ${isolation}`, []);
    await held.raw(`xa start ${literal(gid)}`, []);
  },
  async prepare(held, gid) {
    await held.raw(`xa end ${literal(gid)}`, []);
    await held.raw(`xa prepare ${literal(gid)}`, []);
  },
  async commitOnePhase(held, gid) {
    await held.raw(`xa end ${literal(gid)}`, []);
    await held.raw(`xa commit ${literal(gid)} one phase`, []);
  },
  async rollbackOpen(held, gid) {
    // XA END fails when a statement error already ended the branch; the rollback still applies.
    await held.raw(`xa end ${literal(gid)}`, []).catch(() => undefined);
    await held.raw(`xa rollback ${literal(gid)}`, []);
  },
  async commitPrepared(on, gid) {
    await on.raw(`xa commit ${literal(gid)}`, []);
  },
  async rollbackPrepared(on, gid) {
    await on.raw(`xa rollback ${literal(gid)}`, []);
  },
  async listPrepared(db) {
    const [rows] = (await db.raw('xa recover')) as [{ data: string | Buffer; gtrid_length: number }[]];
    return rows.map((row) => ({ gid: String(row.data).slice(0, Number(row.gtrid_length)), preparedAt: undefined }));
  },
  // ER_XAER_NOTA (1397): unknown XID.
  isUnknownTransaction: (error) => driverCodeOf(error) === 'ER_XAER_NOTA',
};
