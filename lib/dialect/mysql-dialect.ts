import { mysqlTwoPhase } from './two-phase.js';
import { mysqlLocks } from './advisory-locks.js';
import { type DialectAdapter, errorCodeOf, isConnectionFailure } from './dialect-adapter.js';
import { insertMissingWithKnex } from './insert-missing.js';
import { mysqlRowChecksums } from './row-checksums.js';
import { mysqlExactReads } from './exact-temporal.js';
import { mariadbReplication } from './mariadb-replication.js';
import { mysqlKeyColumn } from './key-column.js';
import { mysqlPrimaryKey } from './primary-key.js';
import { mysqlSettings } from './server-connection.js';
import { serverKnexOptions, serverPoolSize } from './server-knex.js';
import { connectionOf } from '../config/connection-vault.js';
import type { ServerConnection } from '../config/config-types.js';

/** A node in trouble: too many connections, server gone or shutting down, connection killed. */
const NODE_FAULT_CODES = new Set([
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);
/** Transaction conflicts worth retrying that say nothing about the node's health. */
const CONFLICT_CODES = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);

export const mysqlDialect: DialectAdapter = {
  family: 'mysql',
  knexOptions: async (node, bounds) => serverKnexOptions(node, 'mysql2', mysqlSettings(connectionOf(node) as ServerConnection, bounds)),
  driverPackages: ['mysql2'],
  poolSize: serverPoolSize,
  // mysql2's own destroy() only half-closes the socket (end), which a stopped server never answers.
  destroySocket(connection) {
    const socket = (connection as { stream?: { destroy(): void } } | null)?.stream;
    socket?.destroy();
    return socket !== undefined;
  },
  affectedRows: (response) => Number((response as [{ affectedRows?: unknown }] | null)?.[0]?.affectedRows ?? 0),
  // Prepared statements count placeholders in 16 bits; knex's client-side escaping has no such limit, but keeps statements bounded by it.
  maxParameters: 65_535,
  bigintsAs: 'number',
  cancellable: true,
  twoPhase: mysqlTwoPhase,
  locks: mysqlLocks,
  classifyError(error) {
    const driverCode = errorCodeOf(error);
    const nodeFault = isConnectionFailure(error) || (driverCode !== undefined && NODE_FAULT_CODES.has(driverCode));
    // read_only (a replica, or a primary fenced by a failover) refuses the write with
    // ER_OPTION_PREVENTS_STATEMENT naming the option; other options (secure_file_priv) share the code.
    const readOnly = driverCode === 'ER_READ_ONLY_MODE' || (driverCode === 'ER_OPTION_PREVENTS_STATEMENT' && /read[-_]only/i.test((error as Error)?.message ?? ''));
    return { nodeFault, retryable: nodeFault || (driverCode !== undefined && CONFLICT_CODES.has(driverCode)), driverCode, readOnly };
  },
  insertMissing: insertMissingWithKnex,
  rowChecksums: mysqlRowChecksums,
  exactReads: () => mysqlExactReads,
  primaryKey: mysqlPrimaryKey,
  keyColumn: mysqlKeyColumn,
  replication: mariadbReplication,
};
