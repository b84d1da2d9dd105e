import { createServerKnex } from './server-knex.js';
import { type DialectAdapter, errorCodeOf, isConnectionFailure } from './dialect-adapter.js';

/** Deadlock, lock wait timeout, too many connections, server gone or shutting down, connection killed. */
const RETRYABLE_CODES = new Set([
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

export const mysqlDialect: DialectAdapter = {
  createKnex: (node) => createServerKnex(node, 'mysql2', ['mysql2']),
  classifyError(error) {
    const driverCode = errorCodeOf(error);
    return { retryable: isConnectionFailure(error) || (driverCode !== undefined && RETRYABLE_CODES.has(driverCode)), driverCode };
  },
};
