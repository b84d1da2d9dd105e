/**
 * What differs between databases, behind one interface: how a node's knex instance is made
 * (loading its driver only when a node of that dialect exists), how its errors classify, its
 * advisory locks and bulk insert, and the replication signals a lag monitor and consistency tokens read.
 */
import type { Knex } from 'knex';
import type { KnexClientClass } from '../knex/guarded-client.js';
import type { ResolvedNode, SqlFamily } from '../config/config-types.js';
import type { AdvisoryLocks } from './advisory-locks.js';
import type { ChangeFeed } from './change-feed.js';
import type { TwoPhaseCommit } from './two-phase.js';
import type { InsertMissing } from './insert-missing.js';
import type { RowChecksums } from './row-checksums.js';
import type { StreamRows } from './copy-stream.js';
import type { KeyColumnReader } from './key-column.js';
import type { PrimaryKeyReader } from './primary-key.js';
import type { ConnectionBounds } from './server-connection.js';

export interface ErrorClass {
  /** Retrying the same statement can succeed (lost connection, deadlock, failover). */
  retryable: boolean;
  /** The node, not the query, is at fault (unreachable, shutting down, overloaded): breakers count these. */
  nodeFault: boolean;
  /** The driver's own code: SQLSTATE on PostgreSQL, ER_* on MySQL/MariaDB, errno names for sockets. */
  driverCode: string | undefined;
  /**
   * The node refused a write because it takes none: a replica, or a primary made read-only. Not
   * retryable in itself; on a shard that can fail over it starts a search for the new primary.
   */
  readOnly?: boolean;
}

/** What a node says it is: a role query, not a guess from errors. */
export type ServerRole = 'primary' | 'replica';

/** A primary's replication position (LSN, GTID set) and its own clock, read together. */
export interface PrimaryState {
  clockMs: number;
  position: string | undefined;
}

export interface ReplicaState {
  /** The replica receives and applies changes (PostgreSQL: WAL receiver streaming; MariaDB: IO and SQL threads). */
  replicating: boolean;
  /** What it has applied: replay LSN, GTID position. */
  position: string | undefined;
  /** The newest heartbeat it has applied, in the primary's clock (ms since the epoch). */
  heartbeatMs: number | undefined;
  /** Why `replicating` is false, for status output. */
  problem?: string;
}

export interface ReplicationSignals {
  ensureHeartbeatTable(primary: Knex, table: string): Promise<void>;
  writeHeartbeat(primary: Knex, table: string): Promise<void>;
  primaryState(primary: Knex): Promise<PrimaryState>;
  replicaState(replica: Knex, heartbeatTable: string): Promise<ReplicaState>;
  /** True when a node at `position` has applied everything up to `target`. */
  reached(position: string, target: string): boolean;
  /** Whether the node takes writes now (a primary, or a replica promoted) or not. */
  role(node: Knex): Promise<ServerRole>;
  /** Makes a replica that has applied everything the primary had the primary (planned failover). */
  promote(node: Knex): Promise<void>;
  /**
   * Makes a primary refuse this application's writes, so that instances still sending it writes
   * learn it is not the primary any more (planned failover); best effort, where privileges allow.
   */
  fence(node: Knex): Promise<void>;
  /** Where a fenced primary's last commit ends: a replica that reached it has all of them. */
  finalPosition(primary: Knex): Promise<string | undefined>;
  /** Undoes fence() when a planned switch fails before the promotion. */
  unfence(node: Knex): Promise<void>;
}

/** What a knex instance for a node is made of; the access layer guards the client (access/open-node.ts). */
export interface NodeKnexOptions {
  /** The dialect's knex client class (the driver loads when a connection is configured). */
  client: KnexClientClass;
  connection: unknown;
  /** Absent where the client allows no pool settings (PGlite: one connection). */
  pool?: { min: number; max: number };
  /** Further knex options of the dialect. */
  extra?: Record<string, unknown>;
}

export interface DialectAdapter {
  /** The SQL it speaks: PostgreSQL (and PGlite) or MySQL/MariaDB. */
  readonly family: SqlFamily;
  knexOptions(node: ResolvedNode, bounds: ConnectionBounds): Promise<NodeKnexOptions>;
  /** The npm packages the dialect's driver needs, named when one is missing. */
  readonly driverPackages: readonly string[];
  /** Connections a node's pool holds at most. */
  poolSize(node: ResolvedNode): number;
  /** Destroys a raw connection's socket at once; false where there is none (PGlite). */
  destroySocket(connection: unknown): boolean;
  /** A running statement can be cancelled from another connection (not PGlite). */
  readonly cancellable: boolean;
  /** Rows a write changed, from the driver's raw response. */
  affectedRows(response: unknown): number;
  /** Bound parameters one statement may carry. */
  readonly maxParameters: number;
  /** How the driver returns BIGINT values: pg as text, PGlite and mysql2 as numbers. */
  readonly bigintsAs: 'string' | 'number';
  classifyError(error: unknown): ErrorClass;
  readonly locks: AdvisoryLocks;
  /** Prepared transactions (PREPARE TRANSACTION, XA); absent where there are none (PGlite). */
  readonly twoPhase?: TwoPhaseCommit;
  /** The table's primary-key columns in key order (empty without one). */
  readonly primaryKey: PrimaryKeyReader;
  /** How the database compares a column's values (its type and collation). */
  readonly keyColumn: KeyColumnReader;
  /** Bulk insert that skips rows whose key exists (backfill). */
  readonly insertMissing: InsertMissing;
  /** A server-side checksum of the rows of some shard keys (verify of copies). */
  readonly rowChecksums: RowChecksums;
  /** Rows copied as they are from one node to another by the database's own bulk streams (PostgreSQL COPY); absent where there are none. */
  readonly streamRows?: StreamRows;
  /**
   * Query options under which temporal values read with their full precision, for copying
   * (exact-temporal.ts); other values read as the node's connection options say.
   */
  exactReads(connection: unknown): Record<string, unknown>;
  /** Cross-process notifications (PostgreSQL LISTEN/NOTIFY); absent elsewhere, where polling does. */
  readonly changeFeed?: ChangeFeed;
  /** Absent for dialects without replication (pglite). */
  readonly replication?: ReplicationSignals;
}

/** Socket-level failures every driver reports the same way. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export function errorCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Network errors, pool acquire and query timeouts, dropped connections: the node's fault on any dialect. */
export function isConnectionFailure(error: unknown): boolean {
  const code = errorCodeOf(error);
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'KnexTimeoutError') return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection is closed|Connection lost|server closed the connection|is not queryable|the database system is (starting up|shutting down)/i.test(
    message,
  );
}

/** The first row of a knex.raw() result: pg returns `{ rows }`, mysql2 `[rows, fields]`. */
export function rowOf(result: unknown): Record<string, unknown> | undefined {
  const rows = Array.isArray(result) ? result[0] : (result as { rows?: unknown[] })?.rows;
  return Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined) : undefined;
}
