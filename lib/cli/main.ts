/**
 * The shardkit command. `shardkit help` lists the subcommands; exit codes: 0 done, 1 failed,
 * 2 usage, 3 a migration gate refused, 4 another runner holds the migration's lock.
 */
import { parseArgs } from 'node:util';
import { MigrationGateError, MigrationLockedError, ShardKitError } from '../errors.js';
import { type CliIo, EXIT, UsageError } from './cli-context.js';
import { migrateCommand } from './migrate-command.js';
import { onlineCommand } from './online-command.js';
import { rebalanceCommand } from './rebalance-command.js';
import { routeCommand } from './route-command.js';
import { statusCommand } from './status-command.js';

const HELP = `usage: shardkit <command> [options]

  migrate latest | rollback [--all] | status | make NAME   schema migrations on every shard primary
          [--shard NAME]... [--dir migrations]
  online start | status | advance | rollback | verify | backfill | cleanup NAME
          [--max-rate ROWS_PER_S] [--max-lag MS] [--batch N] [--wait MS]
          [--yes] [--dry-run] [--drop]
  rebalance plan | run [--add NAME]... [--remove NAME]... [--weight NAME=W]...
          plan: what the change would move (slots, rows per table and shard pair)
          run: moves the keys online up to cutover (cleanup too with --yes); rerun resumes
  rebalance status | rollback | cleanup --yes | abort
          [--max-rate ROWS_PER_S] [--max-lag MS] [--batch N] [--wait MS]
  status [--json] [--watch [SECONDS]]                       shards, nodes, health, breakers, lag, migrations
  route KEY... [--live]                                     the shard of each key (--live: the ring in use)

  --config PATH[#EXPORT]   the config (default: $SHARDKIT_CONFIG or shards.config.ts)

exit codes: 0 done, 1 failed, 2 usage, 3 a migration gate refused, 4 the migration's lock is held,
            5 a node is down or stalled (status)`;

const stdio: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

export async function main(argv: readonly string[], io: CliIo = stdio): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        dir: { type: 'string', default: 'migrations' },
        shard: { type: 'string', multiple: true, default: [] },
        all: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        watch: { type: 'boolean', default: false },
        'max-rate': { type: 'string' },
        'max-lag': { type: 'string' },
        batch: { type: 'string' },
        wait: { type: 'string' },
        yes: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        drop: { type: 'boolean', default: false },
        add: { type: 'string', multiple: true, default: [] },
        remove: { type: 'string', multiple: true, default: [] },
        weight: { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', default: false },
        live: { type: 'boolean', default: false },
      },
    });
    const [command, action, name, ...rest] = positionals;
    const config = values.config;
    const number = (text: string | undefined, flag: string) => {
      if (text === undefined) return undefined;
      const parsed = Number(text);
      if (!Number.isFinite(parsed) || parsed <= 0) throw new UsageError(`--${flag} needs a positive number`);
      return parsed;
    };
    const runOptions = {
      ...(config ? { config } : {}),
      ...optional('maxRate', number(values['max-rate'], 'max-rate')),
      ...optional('maxLagMs', number(values['max-lag'], 'max-lag')),
      ...optional('batch', number(values.batch, 'batch')),
      ...optional('waitMs', number(values.wait, 'wait')),
      yes: values.yes,
      dryRun: values['dry-run'],
      drop: values.drop,
    };
    switch (values.help ? 'help' : command) {
      case 'migrate':
        return await migrateCommand(action, name, { ...(config ? { config } : {}), dir: values.dir, shards: values.shard, all: values.all }, io);
      case 'online':
        return await onlineCommand(action, name, runOptions, io);
      case 'rebalance':
        return await rebalanceCommand(action, { ...runOptions, add: values.add, remove: values.remove, weight: values.weight }, io);
      case 'status':
        return await statusCommand(
          { ...(config ? { config } : {}), json: values.json, ...optional('watchSeconds', values.watch ? (number(action, 'watch') ?? 2) : undefined) },
          io,
        );
      case 'route':
        return await routeCommand([action, name, ...rest].filter((key): key is string => key !== undefined), config, values.live, io);
      case 'help':
      case undefined:
        io.out(HELP);
        return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`${(error as Error).message}\n\n${HELP}`);
      return EXIT.usage;
    }
    io.err(error instanceof ShardKitError ? `${error.code}: ${error.message}` : String((error as Error)?.stack ?? error));
    if (error instanceof MigrationGateError) return EXIT.gate;
    if (error instanceof MigrationLockedError) return EXIT.locked;
    return EXIT.failed;
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
