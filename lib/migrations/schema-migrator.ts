/**
 * Schema migrations and seeds on every shard's primary, never on a replica, several shards at a
 * time, with knex's own migrator: the same files, the same `knex_migrations` table and lock,
 * the same names (the file name, extension included), so a database that plain knex migrated
 * keeps its history. Each shard keeps its own history and lock, so a run that failed on one
 * shard resumes where each shard stopped when it is run again.
 *
 * shardkit 0.1 recorded names without their extension; before each command such a name is
 * renamed to its file's name (`001_users` -> `001_users.ts`) when exactly one migration file
 * has that stem, once per shard (see adoptHistory).
 */
import { readdir } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import { statementFailure } from '../access/statement-errors.js';
import type { ResolvedConfig, ResolvedNode } from '../config/config-types.js';
import type { DialectAdapter } from '../dialect/dialect-adapter.js';
import { ensureTypeScript, isTypeScriptFile } from '../config/typescript-loader.js';
import { SchemaMigrationError, type ShardKitError, type ShardMigrationReport } from '../errors.js';
import { mapWithConcurrency } from '../util/map-with-concurrency.js';

export interface SchemaMigratorOptions {
  /** Folders of migration files. Default: the config's `migrations.directory`. */
  directory?: string | string[];
  /** Shards migrated at once. Default: 4. */
  concurrency?: number;
  /** The table each shard records applied migrations in. Default: the config's `migrations.tableName`. */
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

export interface StepOptions extends RunOptions {
  /** The migration to run or undo (a file name); default: the next pending / the last applied. */
  name?: string;
}

export interface ShardMigrationStatus {
  shard: string;
  applied: string[];
  pending: string[];
}

/** `knex.userParams` of a seed: the shard it runs on, and whether that shard owns a key. */
export interface SeedParams {
  shard: string;
  owns(key: unknown): boolean;
}

export interface ShardVersion {
  shard: string;
  /** The timestamp prefix of the last applied migration, knex's `currentVersion`; 'none' before any. */
  version: string;
}

/** What the migrator needs of a kit. */
export interface MigratorTarget {
  readonly config: Pick<ResolvedConfig, 'migrations' | 'seeds' | 'timeouts'>;
  readonly shardNames: string[];
  forShard(shard: string): Knex;
  shardFor(key: unknown): string;
  readonly topology: { shard(name: string): { primary: { config: ResolvedNode; dialect: DialectAdapter } } };
}

export class SchemaMigrator {
  private readonly directories: string[];
  private readonly concurrency: number;
  private readonly tableName: string;
  private readonly settings: ResolvedConfig['migrations'];

  constructor(
    private readonly kit: MigratorTarget,
    options: SchemaMigratorOptions = {},
  ) {
    this.settings = kit.config.migrations;
    const directory = options.directory ?? this.settings.directory;
    this.directories = (Array.isArray(directory) ? directory : [directory]).map((folder) => resolve(folder));
    this.concurrency = options.concurrency ?? 4;
    this.tableName = options.tableName ?? this.settings.tableName;
  }

  /** Applies pending migrations on every (or the given) shard; throws SchemaMigrationError with a per-shard report. */
  latest(options: RunOptions = {}): Promise<ShardMigrationReport[]> {
    return this.run(options, (migrator, config) => migrator.latest(config));
  }

  /** Rolls back the last batch (or, with `all`, everything) on every (or the given) shard. */
  rollback(options: RollbackOptions = {}): Promise<ShardMigrationReport[]> {
    return this.run(options, (migrator, config) => migrator.rollback(config, options.all ?? false));
  }

  /** Runs the next pending migration (or `name`) on every (or the given) shard. */
  up(options: StepOptions = {}): Promise<ShardMigrationReport[]> {
    return this.run(options, (migrator, config) => migrator.up({ ...config, ...(options.name ? { name: options.name } : {}) }));
  }

  /** Undoes the last applied migration (or `name`) on every (or the given) shard. */
  down(options: StepOptions = {}): Promise<ShardMigrationReport[]> {
    return this.run(options, (migrator, config) => migrator.down({ ...config, ...(options.name ? { name: options.name } : {}) }));
  }

  /** Applied and pending migrations per shard (knex's `migrate:list`). */
  async status(options: RunOptions = {}): Promise<ShardMigrationStatus[]> {
    return this.each(options, async (shard) => {
      const [applied, pending] = (await this.migrator(shard).list(this.config())) as [{ name: string }[], { file: string }[]];
      return { shard, applied: applied.map((entry) => entry.name), pending: pending.map((entry) => entry.file) };
    });
  }

  async currentVersion(options: RunOptions = {}): Promise<ShardVersion[]> {
    return this.each(options, async (shard) => ({ shard, version: String(await this.migrator(shard).currentVersion(this.config())) }));
  }

  /** Releases the migration lock a killed run left behind (knex's `migrate:unlock`). */
  async unlock(options: RunOptions = {}): Promise<string[]> {
    return this.each(options, async (shard) => {
      await this.migrator(shard).forceFreeMigrationsLock(this.config());
      return shard;
    });
  }

  /**
   * Runs the seed files on every (or the given) shard; `specific` runs one file. A seed gets the
   * shard's knex, whose `userParams` say which shard it is and which keys it owns:
   * `knex.userParams.owns(row.id)` keeps a seed of a sharded table to the rows it must hold.
   */
  async seed(options: RunOptions & { directory?: string; specific?: string } = {}): Promise<{ shard: string; files: string[] }[]> {
    const { seeds } = this.kit.config;
    const directory = resolve(options.directory ?? seeds.directory);
    if ((await safeReaddir(directory)).some(isTypeScriptFile)) await ensureTypeScript();
    return this.each(options, async (shard) => {
      const params: SeedParams = { shard, owns: (key) => this.kit.shardFor(key) === shard };
      const [files] = (await this.kit.forShard(shard).withUserParams(params as unknown as Record<string, unknown>).seed.run({
        directory,
        loadExtensions: seeds.loadExtensions,
        ...(options.specific ? { specific: options.specific } : {}),
      })) as [string[]];
      return { shard, files: files.map((file) => file.slice(directory.length + 1)) };
    });
  }

  private async run(options: RunOptions, step: (migrator: Knex.Migrator, config: Knex.MigratorConfig) => Promise<unknown>): Promise<ShardMigrationReport[]> {
    const shards = options.shards ?? this.kit.shardNames;
    await this.prepare();
    const outcomes = await mapWithConcurrency(
      shards,
      this.concurrency,
      (shard) => this.scoped(async () => {
        await this.adoptHistory(shard);
        return step(this.migrator(shard), this.config());
      }),
      { stopOnError: true },
    );
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

  /** `work` on every shard; the first failure is thrown as a typed error naming its shard. */
  private async each<T>(options: RunOptions, work: (shard: string) => Promise<T>): Promise<T[]> {
    await this.prepare();
    const shards = options.shards ?? this.kit.shardNames;
    const outcomes = await mapWithConcurrency(shards, this.concurrency, (shard) =>
      this.scoped(async () => {
        await this.adoptHistory(shard);
        return work(shard);
      }).catch((error: unknown) => {
        throw this.failure(shard, error);
      }),
    );
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed && failed.status === 'rejected') throw failed.reason;
    return outcomes.map((outcome) => (outcome as { value: T }).value);
  }

  /** Schema changes may rewrite big tables: each statement gets timeouts.schemaMigrationMs. */
  private scoped<T>(work: () => Promise<T>): Promise<T> {
    return withScope({ priority: 'normal', timeoutMs: this.kit.config.timeouts.schemaMigrationMs, purpose: 'schema' }, work);
  }

  /** TypeScript migrations need a loader when the process has none. */
  private async prepare(): Promise<void> {
    const files = (await Promise.all(this.directories.map(safeReaddir))).flat();
    if (files.some(isTypeScriptFile)) await ensureTypeScript();
  }

  /**
   * Names recorded by shardkit 0.1 (no extension) become the file's name, as knex records it,
   * when exactly one file of the directories has that stem and a loadable extension.
   */
  private async adoptHistory(shard: string): Promise<void> {
    const db = this.kit.forShard(shard);
    if (!(await db.schema.hasTable(this.tableName))) return;
    const recorded: { name: string }[] = await db(this.tableName).select('name');
    const bare = recorded.filter((row) => extname(row.name) === '');
    if (bare.length === 0) return;
    const files = (await Promise.all(this.directories.map(safeReaddir))).flat().filter((file) => this.settings.loadExtensions.includes(extname(file)));
    for (const { name } of bare) {
      const matches = files.filter((file) => file.slice(0, -extname(file).length) === name);
      if (matches.length === 1) await db(this.tableName).where('name', name).update({ name: matches[0] });
    }
  }

  private migrator(shard: string): Knex.Migrator {
    return this.kit.forShard(shard).migrate;
  }

  private config(): Knex.MigratorConfig {
    const { schemaName, disableTransactions, loadExtensions } = this.settings;
    return {
      directory: this.directories,
      tableName: this.tableName,
      loadExtensions,
      ...(schemaName ? { schemaName } : {}),
      ...(disableTransactions ? { disableTransactions } : {}),
    };
  }

  private failure(shard: string, reason: unknown): ShardKitError {
    const { primary } = this.kit.topology.shard(shard);
    return statementFailure(reason, { shard, node: primary.config.name, description: primary.config.description }, primary.dialect.classifyError);
  }
}

async function safeReaddir(directory: string): Promise<string[]> {
  return readdir(directory).catch(() => []);
}
