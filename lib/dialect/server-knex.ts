import knexModule, { type Knex } from 'knex';
import type { ResolvedNode, ServerConnection } from '../config/config-types.js';
import { DriverMissingError } from '../errors.js';
import { quietKnexLog } from './knex-log.js';

/**
 * A knex instance for a database server. knex requires the driver package (pg, mysql2) when
 * an instance with a connection is created, not before: a kit without such nodes never loads it.
 */
export async function createServerKnex(node: ResolvedNode, client: string, packages: readonly string[]): Promise<Knex> {
  try {
    return knexModule.knex({
      client,
      connection: node.connection as ServerConnection as Knex.StaticConnectionConfig,
      pool: { min: 0, max: 10, ...node.pool },
      log: quietKnexLog,
    });
  } catch (error) {
    if (/Cannot find module|npm install/i.test(String((error as Error)?.message))) {
      throw new DriverMissingError(node.dialect, packages, error);
    }
    throw error;
  }
}
