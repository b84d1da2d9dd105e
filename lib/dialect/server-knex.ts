/**
 * The parts of a server dialect's knex options that PostgreSQL and MySQL share: the client
 * class by knex's name for it, a pool (knex's default size, no idle minimum), and the driver
 * settings of server-connection.ts.
 */
import { knexClientClass } from '../knex/client-class.js';
import type { ResolvedNode } from '../config/config-types.js';
import type { NodeKnexOptions } from './dialect-adapter.js';

export const DEFAULT_POOL_SIZE = 10;

export function serverKnexOptions(node: ResolvedNode, client: string, connection: unknown): NodeKnexOptions {
  return { client: knexClientClass(client), connection, pool: { min: 0, max: DEFAULT_POOL_SIZE, ...node.pool } };
}

export function serverPoolSize(node: ResolvedNode): number {
  return node.pool?.max ?? DEFAULT_POOL_SIZE;
}
