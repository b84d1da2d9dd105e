/**
 * shardkit cache flush [--table T]: drops cached reads, of one table or of all. With the shared
 * level (cache.redis) every instance's entries go: the shared ones in Redis, and each instance's
 * own by the invalidation message. Without it there is nothing this process can reach: the
 * command says so and exits 2. Exits 1 when Redis cannot be reached.
 */
import type { Command } from 'commander';
import { type CliIo, EXIT, type GlobalOptions, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';

export function registerCache(program: Command, io: CliIo, run: Run): void {
  const cache = program.command('cache').description('the read cache: flush');
  cache
    .command('flush')
    .description("drop cached reads of every instance (the shared level's and, by message, each instance's own)")
    .option('--table <name>', 'only this table')
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { table?: string }>();
        return withKit(options.config, async (kit) => {
          if (!kit.config.cache.redis) throw new UsageError('the config has no cache.redis: each process holds its own cache, which kit.flushCache() in that process drops');
          if (options.table !== undefined && !kit.config.tables.has(options.table) && !kit.config.globalTables.has(options.table)) {
            throw new UsageError(`unknown table "${options.table}"`);
          }
          await kit.flushCache(options.table);
          const what = options.table === undefined ? 'every table' : `table ${options.table}`;
          io.out(options.json ? JSON.stringify({ flushed: options.table ?? 'all' }) : `flushed the cached reads of ${what} (${kit.config.cache.redis.address})`);
          return EXIT.ok;
        });
      }),
    );
}
