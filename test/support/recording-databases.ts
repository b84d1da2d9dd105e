/**
 * A fake of the databases migrations and rebalances work through (ShardDatabases): each
 * shard's "primary" is a knex instance whose client runs nothing, records every statement
 * (shard, SQL, bindings) and answers from a script. With it the phases are unit tests with the
 * expected per-shard SQL, no database needed.
 */
import knexModule, { type Knex } from 'knex';
import type { ShardDatabases } from '../../lib/access/shard-databases.js';
import type { DialectAdapter } from '../../lib/dialect/dialect-adapter.js';
import { postgresDialect } from '../../lib/dialect/postgres-dialect.js';
import { knexClientClass } from '../../lib/knex/client-class.js';
import type { HashRing } from '../../lib/hashing/hash-ring.js';

export interface RecordedStatement {
  shard: string;
  sql: string;
  bindings: readonly unknown[];
}

/** Rows a statement returns; undefined: none. */
export type StatementScript = (statement: RecordedStatement) => Record<string, unknown>[] | undefined;

type ClientClass = new (...args: any[]) => object;

export class RecordingDatabases implements ShardDatabases {
  readonly statements: RecordedStatement[] = [];
  private readonly knexes: Map<string, Knex>;

  constructor(
    readonly ring: HashRing,
    script: StatementScript,
    readonly shardNames: readonly string[] = ring.shardNames,
  ) {
    const Base = knexClientClass('pg') as unknown as ClientClass;
    const statements = this.statements;
    const clientFor = (shard: string) =>
      class RecordingClient extends (Base as new (...args: any[]) => Record<string, any>) {
        initializeDriver() {}
        acquireRawConnection() {
          return Promise.resolve({ shard });
        }
        destroyRawConnection() {
          return Promise.resolve();
        }
        _query(_connection: unknown, obj: { sql: string; bindings?: unknown[]; response?: unknown }) {
          const statement = { shard, sql: obj.sql, bindings: obj.bindings ?? [] };
          statements.push(statement);
          const rows = script(statement) ?? [];
          obj.response = { command: /^\s*select/i.test(obj.sql) ? 'SELECT' : 'INSERT', rows, rowCount: rows.length };
          return Promise.resolve(obj);
        }
      };
    this.knexes = new Map(shardNames.map((shard) => [shard, knexModule.knex({ client: clientFor(shard) as never, connection: {}, pool: { min: 0, max: 1 } })]));
  }

  primary(shard: string): Knex {
    const knex = this.knexes.get(shard);
    if (!knex) throw new RangeError(`no shard ${shard}`);
    return knex;
  }

  dialectOf(): DialectAdapter {
    return postgresDialect;
  }

  /** What `shard` was sent, in order. */
  sqlOn(shard: string): string[] {
    return this.statements.filter((statement) => statement.shard === shard).map((statement) => statement.sql);
  }

  async close(): Promise<void> {
    await Promise.all([...this.knexes.values()].map((knex) => knex.destroy()));
  }
}
