/**
 * The shardkit command (commander): `shardkit help [command]` describes every command and its
 * options; a mistyped command or option is answered with a suggestion. Exit codes: 0 done,
 * 1 failed, 2 usage, 3 a migration gate refused, 4 another runner holds the migration's lock,
 * 5 a node is down or stalled (status).
 */
import { Command, CommanderError } from 'commander';
import { MigrationGateError, MigrationLockedError, ShardKitError } from '../errors.js';
import { type CliIo, EXIT, UsageError } from './cli-context.js';
import { registerMigrate } from './migrate-command.js';
import { registerOnline } from './online-command.js';
import { registerRebalance } from './rebalance-command.js';
import { registerRoute } from './route-command.js';
import { registerSeed } from './seed-command.js';
import { registerStatus } from './status-command.js';
import { registerTx } from './tx-command.js';
import { registerFailover } from './failover-command.js';
import { registerCache } from './cache-command.js';
import { registerDegrade } from './degrade-command.js';

const stdio: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  columns: process.stdout.isTTY ? process.stdout.columns : Number(process.env.COLUMNS) || 100,
  progress: process.stderr,
};

/** A command's action resolves to its exit code. */
export type Action = (...args: any[]) => Promise<number>;
/** Turns an action into commander's, recording its exit code. */
export type Run = (action: Action) => (...args: any[]) => Promise<void>;

export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('shardkit')
    .description('sharded data access on knex: schema migrations on every shard, online migrations, rebalances, status')
    .option('--config <path[#export]>', 'the config file (default: $SHARDKIT_CONFIG or shards.config.ts)')
    .option('--json', 'print JSON instead of tables')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(shardkit help <command> shows its options)')
    .configureHelp({ helpWidth: Math.min(io.columns, 100), sortSubcommands: false })
    .configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()), getOutHelpWidth: () => Math.min(io.columns, 100), getErrHelpWidth: () => Math.min(io.columns, 100) })
    .exitOverride();
  const run: Run = (action) => async (...args) => {
    setExit(await action(...args));
  };
  registerMigrate(program, io, run);
  registerSeed(program, io, run);
  registerOnline(program, io, run);
  registerRebalance(program, io, run);
  registerStatus(program, io, run);
  registerRoute(program, io, run);
  registerTx(program, io, run);
  registerFailover(program, io, run);
  registerCache(program, io, run);
  registerDegrade(program, io, run);
  // Every subcommand reports errors the program's way and does not exit the process.
  const propagate = (command: Command) => {
    for (const sub of command.commands) {
      sub.exitOverride().showSuggestionAfterError(true).configureOutput(program.configureOutput()).configureHelp(program.configureHelp());
      propagate(sub);
    }
  };
  propagate(program);
  return program;
}

export async function main(argv: readonly string[], io: CliIo = stdio): Promise<number> {
  let exit: number = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exit = code;
  });
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.usage;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return exit;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help, --version and `help` end with a zero exit code; anything else is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      io.err(`error: ${error.message}\n(shardkit help <command> shows its options)`);
      return EXIT.usage;
    }
    io.err(error instanceof ShardKitError ? `${error.code}: ${error.message}` : `unexpected error: ${String((error as Error)?.stack ?? error)}`);
    if (error instanceof MigrationGateError) return EXIT.gate;
    if (error instanceof MigrationLockedError) return EXIT.locked;
    return EXIT.failed;
  }
}
