/**
 * Driver errors as typed ShardKitErrors naming the shard and node: QueryFailedError for a
 * statement, ConnectionFailedError for a connection that could not be made. Messages are
 * bounded and carry at most the start of the SQL, never its bound values (which can be
 * personal data); the driver error stays as `cause`.
 */
import type { ErrorClass } from '../dialect/dialect-adapter.js';
import { ConnectionFailedError, QueryFailedError, ShardKitError, truncate } from '../errors.js';

/** Who an error is about: what every error of the seam names. */
export interface NodeSubject {
  shard: string;
  node: string;
  /** Where the node is, without credentials. */
  description: string;
}

const SQL_SHOWN = 200;
const REASON_SHOWN = 500;

/** Codes of a connection that was refused for good: wrong credentials, a missing database. */
const PERMANENT_CONNECT_CODES = new Set(['28P01', '28000', '3D000', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE']);

function reasonOf(error: unknown): string {
  return truncate(error instanceof Error ? error.message : String(error), REASON_SHOWN);
}

export function statementFailure(error: unknown, subject: NodeSubject, classify: (error: unknown) => ErrorClass, sql?: string): ShardKitError {
  if (error instanceof ShardKitError) return error;
  const { retryable, driverCode } = classify(error);
  const statement = sql ? ` [sql: ${truncate(sql.replace(/\s+/g, ' '), SQL_SHOWN)}]` : '';
  return new QueryFailedError(`query on shard ${subject.shard} (node ${subject.node}) failed: ${reasonOf(error)}${statement}`, {
    cause: error,
    shard: subject.shard,
    node: subject.node,
    retryable,
    ...(driverCode === undefined ? {} : { driverCode }),
  });
}

export function connectionFailure(error: unknown, subject: NodeSubject, classify: (error: unknown) => ErrorClass): ShardKitError {
  if (error instanceof ShardKitError) return error;
  const { driverCode } = classify(error);
  const permanent = driverCode !== undefined && PERMANENT_CONNECT_CODES.has(driverCode);
  return new ConnectionFailedError(subject.shard, subject.node, subject.description, reasonOf(error), {
    cause: error,
    retryable: !permanent,
    ...(driverCode === undefined ? {} : { driverCode }),
  });
}
