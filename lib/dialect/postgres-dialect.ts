import { createServerKnex } from './server-knex.js';
import { postgresLocks } from './advisory-locks.js';
import { type DialectAdapter, type ErrorClass, errorCodeOf, isConnectionFailure } from './dialect-adapter.js';
import { postgresChangeFeed } from './change-feed.js';
import { postgresPrimaryKey } from './primary-key.js';
import { insertMissingAsJson, localTimestampText } from './insert-missing.js';
import { postgresReplication } from './postgres-replication.js';

/** SQLSTATEs of a node in trouble: admin/crash shutdown, cannot connect now, too many connections. */
const NODE_FAULT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** Transaction conflicts worth retrying that say nothing about the node's health. */
const CONFLICT_SQLSTATES = new Set(['40001', '40P01']);

export function classifyPostgresError(error: unknown): ErrorClass {
  const driverCode = errorCodeOf(error);
  const nodeFault =
    isConnectionFailure(error) ||
    (driverCode !== undefined && (driverCode.startsWith('08') || NODE_FAULT_SQLSTATES.has(driverCode)));
  return { nodeFault, retryable: nodeFault || (driverCode !== undefined && CONFLICT_SQLSTATES.has(driverCode)), driverCode };
}

export const postgresDialect: DialectAdapter = {
  createKnex: (node) => createServerKnex(node, 'pg', ['pg']),
  locks: postgresLocks,
  classifyError: classifyPostgresError,
  insertMissing: insertMissingAsJson(localTimestampText),
  changeFeed: postgresChangeFeed,
  primaryKey: postgresPrimaryKey,
  replication: postgresReplication,
};
