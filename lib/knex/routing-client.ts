/**
 * A knex instance whose builders are routed when they run. It compiles SQL with the shards'
 * dialect but owns no connection: knex hands every executed or streamed builder to
 * `client.runner()`, which this client overrides to pass the builder to shardkit's planner and
 * engine.
 */
import { Readable } from 'node:stream';
import knexModule, { type Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import type { AnyQueryBuilder } from './builder-internals.js';

export interface RoutedExecution {
  execute(builder: AnyQueryBuilder): Promise<unknown>;
  stream(builder: AnyQueryBuilder): AsyncIterable<Record<string, unknown>>;
}

const COMPILER_CLIENT: Record<SqlFamily, string> = { postgres: 'pg', mysql: 'mysql2' };

export function createRoutingKnex(family: SqlFamily, routed: RoutedExecution): Knex {
  // A connection-less knex only compiles; it never loads the driver.
  const DialectClient = knexModule.knex({ client: COMPILER_CLIENT[family] }).client.constructor as typeof knexModule.Client;

  class RoutingClient extends DialectClient {
    override runner(builder: AnyQueryBuilder) {
      // builder.stream() gives a Readable in object mode, which is also an async iterable.
      const stream = (options?: unknown) => {
        if (typeof options === 'function') {
          throw new UnsupportedQueryError('stream', 'use the stream stream() returns (or for await over it), not a callback');
        }
        return Readable.from(routed.stream(builder));
      };
      return {
        run: () => routed.execute(builder),
        stream,
        pipe: (writable: NodeJS.WritableStream) => stream().pipe(writable),
      };
    }
  }
  return knexModule.knex({ client: RoutingClient });
}
