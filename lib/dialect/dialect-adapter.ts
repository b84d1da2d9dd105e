/**
 * What differs between databases, behind one interface: how a node's knex instance is made
 * (loading its driver only when a node of that dialect exists) and how its errors classify.
 * Later capabilities (lag probes, consistency tokens, advisory locks) join this interface.
 */
import type { Knex } from 'knex';
import type { ResolvedNode } from '../config/config-types.js';

export interface ErrorClass {
  /** Retrying the same statement can succeed (lost connection, deadlock, failover). */
  retryable: boolean;
  /** The driver's own code: SQLSTATE on PostgreSQL, ER_* on MySQL/MariaDB, errno names for sockets. */
  driverCode: string | undefined;
}

export interface DialectAdapter {
  createKnex(node: ResolvedNode): Promise<Knex>;
  classifyError(error: unknown): ErrorClass;
}

/** Socket-level failures every driver reports the same way. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export function errorCodeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Network errors, pool acquire timeouts and dropped connections: retryable on any dialect. */
export function isConnectionFailure(error: unknown): boolean {
  const code = errorCodeOf(error);
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'KnexTimeoutError') return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection is closed|Connection lost|server closed the connection/i.test(message);
}
