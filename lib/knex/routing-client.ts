/**
 * A knex instance whose builders are routed when they run. It compiles SQL with the shards'
 * dialect but owns no connection: knex hands every executed or streamed builder to
 * `client.runner()`, which this client overrides to pass the builder to shardkit's planner and
 * engine.
 */
import { Readable } from 'node:stream';
import knexModule, { type Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { quietKnexLog } from '../dialect/knex-log.js';
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
      return new RoutedRunner(routed, builder);
    }
  }
  // Builders compile with this client: its warnings (a MySQL .returning(), say) are as quiet as a node's.
  return knexModule.knex({ client: RoutingClient, log: quietKnexLog });
}

/** What knex calls to run or stream a builder (a class: no closures made per statement). */
class RoutedRunner {
  constructor(
    private readonly routed: RoutedExecution,
    private readonly builder: AnyQueryBuilder,
  ) {}

  run(): Promise<unknown> {
    return this.routed.execute(this.builder);
  }

  /** builder.stream() gives a Readable in object mode, which is also an async iterable. */
  stream(options?: unknown): Readable {
    if (typeof options === 'function') {
      throw new UnsupportedQueryError('stream', 'use the stream stream() returns (or for await over it), not a callback');
    }
    return Readable.from(this.routed.stream(this.builder));
  }

  pipe(writable: NodeJS.WritableStream): NodeJS.WritableStream {
    return this.stream().pipe(writable);
  }
}
