/**
 * Schema migrations (knex migrations from `migrations/`) on every shard's primary, never on a
 * replica, several shards at a time. Each shard keeps its own knex_migrations table and lock,
 * so a run that failed on one shard resumes where each shard stopped when it is run again.
 */
import type { Knex } from 'knex';
import { SchemaMigrationError, type ShardKitError, type ShardMigrationReport } from '../errors.js';
import { withScope } from '../access/call-scope.js';
import { statementFailure } from '../access/statement-errors.js';
import type { ShardKit } from '../shard-kit.js';
import { mapWithConcurrency } from '../util/map-with-concurrency.js';
import { DirectoryMigrationSource } from './directory-migration-source.js';

export interface SchemaMigratorOptions {
  /** Folder of migration files. Default: `migrations`. */
  directory?: string;
  /** Shards migrated at once. Default: 4. */
  concurrency?: number;
  /** The table each shard records applied migrations in. Default: knex_migrations. */
  tableName?: string;
}

export interface RunOptions {
  /** Limit the run to these shards. Default: every shard. */
  shards?: string[];
}

export interface RollbackOptions extends RunOptions {
  /** Roll back every applied migration, not only the last batch. */
  all?: boolean;
}

export interface ShardMigrationStatus {
  shard: string;
  applied: string[];
  pending: string[];
}

export class SchemaMigrator {
  private readonly source: DirectoryMigrationSource;
  private readonly concurrency: number;
  private readonly tableName: string;

  constructor(
    private readonly kit: ShardKit,
    options: SchemaMigratorOptions = {},
  ) {
    this.source = new DirectoryMigrationSource(options.directory ?? 'migrations');
    this.concurrency = options.concurrency ?? 4;
    this.tableName = options.tableName ?? 'knex_migrations';
  }

  /** Applies pending migrations on every (or the given) shard; throws SchemaMigrationError with a per-shard report. */
  latest(options: RunOptions = {}): Promise<ShardMigrationReport[]> {
    return this.run(options, (migrator) => migrator.latest(this.config()));
  }

  /** Rolls back the last batch (or, with `all`, everything) on every (or the given) shard. */
  rollback(options: RollbackOptions = {}): Promise<ShardMigrationReport[]> {
    return this.run(options, (migrator) => migrator.rollback(this.config(), options.all ?? false));
  }

  async status(options: RunOptions = {}): Promise<ShardMigrationStatus[]> {
    const shards = options.shards ?? this.kit.shardNames;
    return Promise.all(
      shards.map(async (shard) => {
        const [applied, pending] = (await this.kit.forShard(shard).migrate.list(this.config())) as [
          { name: string }[],
          string[],
        ];
        return {
          shard,
          applied: applied.map((entry) => entry.name),
          pending: pending.map((file) => this.source.getMigrationName(file)),
        };
      }),
    );
  }

  private async run(options: RunOptions, step: (migrator: Knex.Migrator) => Promise<unknown>): Promise<ShardMigrationReport[]> {
    const shards = options.shards ?? this.kit.shardNames;
    // Schema changes may rewrite big tables: each statement gets timeouts.schemaMigrationMs.
    const scope = { priority: 'normal', timeoutMs: this.kit.config.timeouts.schemaMigrationMs, purpose: 'schema' } as const;
    const outcomes = await mapWithConcurrency(shards, this.concurrency, (shard) => withScope(scope, () => step(this.kit.forShard(shard).migrate)), {
      stopOnError: true,
    });
    const statuses = await this.status({ shards }).catch(() => undefined);
    const report = shards.map((shard, index): ShardMigrationReport => {
      const outcome = outcomes[index]!;
      const applied = statuses?.[index]?.applied ?? [];
      if (outcome.status !== 'rejected') return { shard, applied };
      return { shard, applied, error: this.failure(shard, outcome.reason) };
    });
    if (report.some((entry) => entry.error)) throw new SchemaMigrationError(report);
    return report;
  }

  private failure(shard: string, reason: unknown): ShardKitError {
    const { primary } = this.kit.topology.shard(shard);
    return statementFailure(reason, { shard, node: primary.config.name, description: primary.config.description }, primary.dialect.classifyError);
  }

  private config(): Knex.MigratorConfig {
    return { migrationSource: this.source, tableName: this.tableName };
  }
}
