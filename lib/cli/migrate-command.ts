/**
 * shardkit migrate latest | rollback [--all] | up [NAME] | down [NAME] | status | list |
 *   current-version | unlock | make NAME    [--shard NAME]... [--dir DIR]
 * Schema migrations on every shard primary with knex's migrator and history table, one table
 * line per shard.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load-config.js';
import { resolveConfig } from '../config/resolve-config.js';
import { ConfigLoadError, SchemaMigrationError, type ShardMigrationReport } from '../errors.js';
import { SchemaMigrator } from '../migrations/schema-migrator.js';
import { type CliIo, collect, EXIT, type GlobalOptions, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { renderTable } from './render-table.js';

interface MigrateOptions extends GlobalOptions {
  shard?: string[];
  dir?: string;
  all?: boolean;
}

export function registerMigrate(program: Command, io: CliIo, run: Run): void {
  const migrate = program.command('migrate').description('schema migrations (knex) on every shard primary');
  const shards = (command: Command) => command.option('--shard <name>', 'only this shard (repeatable)', collect).option('--dir <directory>', 'the migrations folder (default: the config\'s migrations.directory)');
  const report = (verb: string, step: (migrator: SchemaMigrator, options: MigrateOptions, name?: string) => Promise<ShardMigrationReport[]>) =>
    run(async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      const options = command.optsWithGlobals<MigrateOptions>();
      const name = typeof args[0] === 'string' ? args[0] : undefined;
      return withKit(options.config, async (kit) => {
        const migrator = migratorFor(kit, options);
        if (!options.json) for (const shard of options.shard ?? kit.shardNames) io.err(`${verb} ${shard}...`);
        try {
          printReport(await step(migrator, options, name), options, io);
          return EXIT.ok;
        } catch (error) {
          if (!(error instanceof SchemaMigrationError)) throw error;
          printReport(error.report, options, io);
          io.err(`${error.code}: ${error.message}`);
          return EXIT.failed;
        }
      });
    });
  shards(migrate.command('latest').description('apply every pending migration')).action(report('migrating', (m, o) => m.latest(scope(o))));
  shards(migrate.command('rollback').description('undo the last batch').option('--all', 'undo every applied migration')).action(
    report('rolling back', (m, o) => m.rollback({ ...scope(o), all: o.all === true })),
  );
  shards(migrate.command('up').argument('[name]', 'the migration file; default the next pending one').description('apply one migration')).action(
    report('migrating', (m, o, name) => m.up({ ...scope(o), ...(name ? { name } : {}) })),
  );
  shards(migrate.command('down').argument('[name]', 'the migration file; default the last applied one').description('undo one migration')).action(
    report('rolling back', (m, o, name) => m.down({ ...scope(o), ...(name ? { name } : {}) })),
  );
  const query = (work: (migrator: SchemaMigrator, options: MigrateOptions) => Promise<string>) =>
    run(async (...args: unknown[]) => {
      const options = (args.at(-1) as Command).optsWithGlobals<MigrateOptions>();
      return withKit(options.config, async (kit) => {
        io.out(await work(migratorFor(kit, options), options));
        return EXIT.ok;
      });
    });
  shards(migrate.command('status').description('applied and pending migrations, per shard')).action(
    query(async (m, o) => {
      const status = await m.status(scope(o));
      if (o.json) return JSON.stringify(status, null, 2);
      return renderTable(
        ['shard', 'applied', 'last applied', { header: 'pending', wrap: true }],
        status.map((entry) => [entry.shard, entry.applied.length, entry.applied.at(-1) ?? '(none)', entry.pending.join(', ') || '(none)']),
        io.columns,
      );
    }),
  );
  shards(migrate.command('list').description('every migration file and where it is applied')).action(
    query(async (m, o) => {
      const status = await m.status(scope(o));
      if (o.json) return JSON.stringify(status, null, 2);
      const files = [...new Set(status.flatMap((entry) => [...entry.applied, ...entry.pending]))].sort();
      return renderTable(['migration', ...status.map((entry) => entry.shard)], files.map((file) => [file, ...status.map((entry) => (entry.applied.includes(file) ? 'applied' : 'pending'))]), io.columns);
    }),
  );
  shards(migrate.command('current-version').description('the version of the last applied migration, per shard')).action(
    query(async (m, o) => {
      const versions = await m.currentVersion(scope(o));
      return o.json ? JSON.stringify(versions, null, 2) : renderTable(['shard', 'version'], versions.map((entry) => [entry.shard, entry.version]), io.columns);
    }),
  );
  shards(migrate.command('unlock').description('release the migration lock a killed run left behind')).action(
    query(async (m, o) => {
      const unlocked = await m.unlock(scope(o));
      return o.json ? JSON.stringify(unlocked) : unlocked.map((shard) => `unlocked ${shard}`).join('\n');
    }),
  );
  migrate
    .command('make')
    .argument('<name>', 'letters, digits and _')
    .option('--dir <directory>', "where to write it (default: the config's migrations.directory)")
    .option('--js', 'write JavaScript (default: the config\'s migrations.extension, else TypeScript)')
    .description('write a new, empty migration')
    .action(
      run(async (name: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<MigrateOptions & { js?: boolean }>();
        // Only the config's migrations section is needed: no database.
        const settings = await migrationSettings(options.config);
        const directory = options.dir ?? (Array.isArray(settings.directory) ? settings.directory[0]! : settings.directory);
        io.out(`created ${await makeFile(name, directory, options.js ? 'js' : settings.extension, MIGRATION_TEMPLATE)}`);
        return EXIT.ok;
      }),
    );
}

/** The config's migrations section; the defaults where there is no config file yet. */
async function migrationSettings(configPath: string | undefined): Promise<{ directory: string | string[]; extension: 'ts' | 'js' }> {
  try {
    return resolveConfig(await loadConfig(configPath)).migrations;
  } catch (error) {
    if (error instanceof ConfigLoadError) return { directory: 'migrations', extension: 'ts' };
    throw error;
  }
}

function migratorFor(kit: Parameters<Parameters<typeof withKit>[1]>[0], options: MigrateOptions): SchemaMigrator {
  return new SchemaMigrator(kit, options.dir ? { directory: options.dir } : {});
}

function scope(options: MigrateOptions): { shards?: string[] } {
  return options.shard && options.shard.length > 0 ? { shards: options.shard } : {};
}

function printReport(report: readonly ShardMigrationReport[], options: MigrateOptions, io: CliIo): void {
  if (options.json) {
    io.out(JSON.stringify(report.map((entry) => ({ shard: entry.shard, applied: entry.applied, ...(entry.error ? { error: { code: entry.error.code, message: entry.error.message } } : {}) })), null, 2));
    return;
  }
  io.out(
    renderTable(
      ['shard', 'applied', 'at version', { header: 'result', wrap: true }],
      report.map((entry) => [entry.shard, entry.applied.length, entry.applied.at(-1) ?? '(none)', entry.error ? `FAILED: ${entry.error.message}` : 'ok']),
      io.columns,
    ),
  );
}

const MIGRATION_TEMPLATE = {
  ts: "import type { Knex } from 'shardkit';\n\nexport async function up(knex: Knex): Promise<void> {\n  // runs on every shard primary\n}\n\nexport async function down(knex: Knex): Promise<void> {\n  // undoes up()\n}\n",
  js: "/** @param {import('shardkit').Knex} knex */\nexport async function up(knex) {\n  // runs on every shard primary\n}\n\n/** @param {import('shardkit').Knex} knex */\nexport async function down(knex) {\n  // undoes up()\n}\n",
};

/** `<directory>/<timestamp>_<name>.<ext>`, never over an existing file. */
export async function makeFile(name: string, directory: string, extension: 'ts' | 'js', templates: Record<'ts' | 'js', string>): Promise<string> {
  if (!/^[a-z0-9_]+$/i.test(name)) throw new UsageError('the NAME is letters, digits and _');
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const file = join(directory, `${stamp}_${name}.${extension === 'js' ? 'mjs' : 'ts'}`);
  await mkdir(directory, { recursive: true });
  await writeFile(file, templates[extension], { flag: 'wx' });
  return file;
}
