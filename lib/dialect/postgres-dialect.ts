import { createServerKnex } from './server-knex.js';
import { type DialectAdapter, errorCodeOf, isConnectionFailure } from './dialect-adapter.js';

/**
 * SQLSTATEs worth retrying: connection exceptions (class 08), serialization failure, deadlock,
 * admin/crash shutdown, cannot connect now, too many connections.
 */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01', '57P01', '57P02', '57P03', '53300']);

export function classifyPostgresError(error: unknown) {
  const driverCode = errorCodeOf(error);
  const retryable =
    isConnectionFailure(error) ||
    (driverCode !== undefined && (driverCode.startsWith('08') || RETRYABLE_SQLSTATES.has(driverCode)));
  return { retryable, driverCode };
}

export const postgresDialect: DialectAdapter = {
  createKnex: (node) => createServerKnex(node, 'pg', ['pg']),
  classifyError: classifyPostgresError,
};
