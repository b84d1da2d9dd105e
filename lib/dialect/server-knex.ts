/**
 * The parts of a server dialect's knex options that PostgreSQL and MySQL share: the client
 * class by knex's name for it, a pool (knex's default size, no idle minimum), and the driver
 * settings of server-connection.ts.
 */
import knexModule from 'knex';
import type { KnexClientClass } from '../access/guarded-client.js';
import type { ResolvedNode } from '../config/config-types.js';
import type { NodeKnexOptions } from './dialect-adapter.js';

export const DEFAULT_POOL_SIZE = 10;

/** knex's client class for `name` ('pg', 'mysql2'): a connection-less instance loads no driver. */
export function knexClientClass(name: string): KnexClientClass {
  return knexModule.knex({ client: name }).client.constructor as KnexClientClass;
}

export function serverKnexOptions(node: ResolvedNode, client: string, connection: unknown): NodeKnexOptions {
  return { client: knexClientClass(client), connection, pool: { min: 0, max: DEFAULT_POOL_SIZE, ...node.pool } };
}

export function serverPoolSize(node: ResolvedNode): number {
  return node.pool?.max ?? DEFAULT_POOL_SIZE;
}
