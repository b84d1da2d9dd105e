/**
 * shardkit migrate latest | rollback [--all] | status | make NAME  [--shard NAME]... [--dir migrations]
 * Schema migrations on every shard primary, with a per-shard table.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SchemaMigrationError, type ShardMigrationReport } from '../errors.js';
import { SchemaMigrator } from '../migrations/schema-migrator.js';
import { type CliIo, EXIT, UsageError, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export interface MigrateOptions {
  config?: string;
  dir: string;
  shards: string[];
  all: boolean;
}

export async function migrateCommand(action: string | undefined, name: string | undefined, options: MigrateOptions, io: CliIo): Promise<number> {
  if (action === 'make') return makeMigration(name, options.dir, io);
  if (!['latest', 'rollback', 'status'].includes(action ?? '')) throw new UsageError('migrate needs one of: latest, rollback, status, make NAME');
  return withKit(options.config, async (kit) => {
    const migrator = new SchemaMigrator(kit, { directory: options.dir });
    const run = options.shards.length > 0 ? { shards: options.shards } : {};
    if (action === 'status') {
      const status = await migrator.status(run);
      io.out(renderTable(['shard', 'applied', 'last applied', 'pending'], status.map((entry) => [entry.shard, entry.applied.length, entry.applied.at(-1) ?? '', entry.pending.join(', ')])));
      return EXIT.ok;
    }
    for (const shard of run.shards ?? kit.shardNames) io.err(`${action === 'latest' ? 'migrating' : 'rolling back'} ${shard}...`);
    try {
      const report = action === 'latest' ? await migrator.latest(run) : await migrator.rollback({ ...run, all: options.all });
      io.out(reportTable(report));
      return EXIT.ok;
    } catch (error) {
      if (!(error instanceof SchemaMigrationError)) throw error;
      io.out(reportTable(error.report));
      io.err(`${error.code}: ${error.message}`);
      return EXIT.failed;
    }
  });
}

function reportTable(report: readonly ShardMigrationReport[]): string {
  return renderTable(
    ['shard', 'applied', 'at version', 'result'],
    report.map((entry) => [entry.shard, entry.applied.length, entry.applied.at(-1) ?? '(none)', entry.error ? `FAILED: ${entry.error.message}` : 'ok']),
  );
}

async function makeMigration(name: string | undefined, dir: string, io: CliIo): Promise<number> {
  if (!name || !/^[a-z0-9_]+$/i.test(name)) throw new UsageError('migrate make needs a NAME of letters, digits and _');
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const file = join(dir, `${stamp}_${name}.ts`);
  await mkdir(dir, { recursive: true });
  await writeFile(
    file,
    "import type { Knex } from 'knex';\n\nexport async function up(knex: Knex): Promise<void> {\n  // runs on every shard primary\n}\n\nexport async function down(knex: Knex): Promise<void> {\n  // undoes up()\n}\n",
    { flag: 'wx' },
  );
  io.out(`created ${file}`);
  return EXIT.ok;
}
