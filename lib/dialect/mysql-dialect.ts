import { createServerKnex } from './server-knex.js';
import { mysqlLocks } from './advisory-locks.js';
import { type DialectAdapter, errorCodeOf, isConnectionFailure } from './dialect-adapter.js';
import { insertMissingWithKnex } from './insert-missing.js';
import { mariadbReplication } from './mariadb-replication.js';
import { mysqlPrimaryKey } from './primary-key.js';

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
  createKnex: (node) => createServerKnex(node, 'mysql2', ['mysql2']),
  locks: mysqlLocks,
  classifyError(error) {
    const driverCode = errorCodeOf(error);
    const nodeFault = isConnectionFailure(error) || (driverCode !== undefined && NODE_FAULT_CODES.has(driverCode));
    return { nodeFault, retryable: nodeFault || (driverCode !== undefined && CONFLICT_CODES.has(driverCode)), driverCode };
  },
  insertMissing: insertMissingWithKnex,
  primaryKey: mysqlPrimaryKey,
  replication: mariadbReplication,
};
