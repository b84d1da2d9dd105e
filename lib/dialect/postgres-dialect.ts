import { postgresTwoPhase } from './two-phase.js';
import { postgresLocks } from './advisory-locks.js';
import { postgresChangeFeed } from './change-feed.js';
import { type DialectAdapter, type ErrorClass, errorCodeOf, isConnectionFailure } from './dialect-adapter.js';
import { insertMissingAsJson, localTimestampText } from './insert-missing.js';
import { postgresRowChecksums } from './row-checksums.js';
import { type PgTypeSet, postgresExactReads } from './exact-temporal.js';
import { insertMissingByCopy } from './copy-missing.js';
import { streamRowsByCopy } from './copy-stream.js';
import { postgresReplication } from './postgres-replication.js';
import { postgresKeyColumn } from './key-column.js';
import { postgresPrimaryKey } from './primary-key.js';
import { postgresSettings } from './server-connection.js';
import { serverKnexOptions, serverPoolSize } from './server-knex.js';
import { connectionOf } from '../config/connection-vault.js';
import type { ServerConnection } from '../config/config-types.js';

/** SQLSTATEs of a node in trouble: admin/crash shutdown, cannot connect now, too many connections. */
const NODE_FAULT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** Connection exceptions (class 08) except a protocol violation, which a retry repeats (too many parameters, say). */
const DETERMINISTIC_CONNECTION_SQLSTATES = new Set(['08P01']);
/** Transaction conflicts worth retrying that say nothing about the node's health. */
const CONFLICT_SQLSTATES = new Set(['40001', '40P01']);

export function classifyPostgresError(error: unknown): ErrorClass {
  const driverCode = errorCodeOf(error);
  const connectionClass = driverCode?.startsWith('08') === true && !DETERMINISTIC_CONNECTION_SQLSTATES.has(driverCode);
  const nodeFault = isConnectionFailure(error) || connectionClass || (driverCode !== undefined && NODE_FAULT_SQLSTATES.has(driverCode));
  // 25006: a write in a read-only transaction (a hot standby, or a fenced primary).
  const readOnly = driverCode === '25006';
  return { nodeFault, retryable: nodeFault || (driverCode !== undefined && CONFLICT_SQLSTATES.has(driverCode)), driverCode, readOnly };
}

/** node-postgres keeps its socket on `connection.stream`. */
export function destroyPostgresSocket(connection: unknown): boolean {
  const socket = (connection as { connection?: { stream?: { destroy(): void } } } | null)?.connection?.stream;
  socket?.destroy();
  return socket !== undefined;
}

export const postgresDialect: DialectAdapter = {
  family: 'postgres',
  knexOptions: async (node, bounds) => serverKnexOptions(node, 'pg', postgresSettings(connectionOf(node) as ServerConnection, bounds)),
  driverPackages: ['pg'],
  poolSize: serverPoolSize,
  destroySocket: destroyPostgresSocket,
  affectedRows: (response) => Number((response as { rowCount?: unknown } | null)?.rowCount ?? 0),
  // The wire protocol counts parameters in 16 bits.
  maxParameters: 65_535,
  bigintsAs: 'string',
  cancellable: true,
  twoPhase: postgresTwoPhase,
  locks: postgresLocks,
  classifyError: classifyPostgresError,
  insertMissing: insertMissingByCopy(localTimestampText, insertMissingAsJson(localTimestampText)),
  rowChecksums: postgresRowChecksums,
  streamRows: streamRowsByCopy,
  exactReads: (connection) => postgresExactReads((connection as { types?: PgTypeSet } | undefined)?.types),
  changeFeed: postgresChangeFeed,
  primaryKey: postgresPrimaryKey,
  keyColumn: postgresKeyColumn,
  replication: postgresReplication,
};
