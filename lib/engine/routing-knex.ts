/**
 * A knex instance whose builders are routed when they run. It compiles SQL with the shards'
 * dialect but owns no connection: knex hands every executed builder to `client.runner()`,
 * which this client overrides to pass the builder to shardkit's planner and engine.
 */
import knexModule, { type Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import type { AnyQueryBuilder } from '../planner/builder-internals.js';

export type RoutedExecutor = (builder: AnyQueryBuilder) => Promise<unknown>;

const COMPILER_CLIENT: Record<SqlFamily, string> = { postgres: 'pg', mysql: 'mysql2' };

function refuseStream(): never {
  throw new UnsupportedQueryError('stream', 'routed queries do not stream yet; stream from one shard with kit.forKey(key)(table)...stream()');
}

export function createRoutingKnex(family: SqlFamily, execute: RoutedExecutor): Knex {
  // A connection-less knex only compiles; it never loads the driver.
  const DialectClient = knexModule.knex({ client: COMPILER_CLIENT[family] }).client.constructor as typeof knexModule.Client;

  class RoutingClient extends DialectClient {
    override runner(builder: AnyQueryBuilder) {
      return { run: () => execute(builder), stream: refuseStream, pipe: refuseStream };
    }
  }
  return knexModule.knex({ client: RoutingClient });
}
