/** shardkit seed run [--specific FILE] [--shard NAME]... | seed make NAME: knex seeds on every shard primary. */
import type { Command } from 'commander';
import { SchemaMigrator } from '../migrations/schema-migrator.js';
import { type CliIo, collect, EXIT, type GlobalOptions, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { makeFile } from './migrate-command.js';
import { renderTable } from './render-table.js';

export function registerSeed(program: Command, io: CliIo, run: Run): void {
  const seed = program.command('seed').description('knex seeds on every shard primary');
  seed
    .command('run')
    .description('run the seed files (in name order) on every shard')
    .option('--specific <file>', 'only this seed file')
    .option('--dir <directory>', "the seeds folder (default: the config's seeds.directory)")
    .option('--shard <name>', 'only this shard (repeatable)', collect)
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { specific?: string; dir?: string; shard?: string[] }>();
        return withKit(options.config, async (kit) => {
          const ran = await new SchemaMigrator(kit).seed({
            ...(options.specific ? { specific: options.specific } : {}),
            ...(options.dir ? { directory: options.dir } : {}),
            ...(options.shard?.length ? { shards: options.shard } : {}),
          });
          io.out(options.json ? JSON.stringify(ran, null, 2) : renderTable(['shard', { header: 'seeds run', wrap: true }], ran.map((entry) => [entry.shard, entry.files.join(', ') || '(none)']), io.columns));
          return EXIT.ok;
        });
      }),
    );
  seed
    .command('make')
    .argument('<name>', 'letters, digits and _')
    .option('--dir <directory>', 'where to write it', 'seeds')
    .option('--js', 'write JavaScript instead of TypeScript')
    .description('write a new seed file')
    .action(
      run(async (name: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<{ dir: string; js?: boolean }>();
        io.out(`created ${await makeFile(name, options.dir, options.js ? 'js' : 'ts', SEED_TEMPLATE)}`);
        return EXIT.ok;
      }),
    );
}

const SEED_TEMPLATE = {
  ts: "import type { Knex, SeedParams } from 'shardkit';\n\n/** Runs on every shard primary; insert only the rows of sharded tables that this shard owns. */\nexport async function seed(knex: Knex): Promise<void> {\n  const { owns } = knex.userParams as SeedParams;\n  const rows: { id: number }[] = [];\n  // await knex('my_table').insert(rows.filter((row) => owns(row.id)));\n}\n",
  js: "/** Runs on every shard primary; insert only the rows of sharded tables that this shard owns. @param {import('shardkit').Knex} knex */\nexport async function seed(knex) {\n  const { owns } = knex.userParams;\n  // await knex('my_table').insert(rows.filter((row) => owns(row.id)));\n}\n",
};
