/**
 * shardkit online start | status | advance | rollback | verify | backfill | run | cleanup  NAME
 * Drives an online migration declared in the config's `onlineMigrations`; every command prints
 * the migration's status afterwards (tables, or --json). `run` drives it phase by phase (see
 * migrations/online/drive.ts) up to cutover, or to `--until PHASE`.
 */
import type { Command } from 'commander';
import { drive } from '../migrations/online/drive.js';
import type { MigrationStatus } from '../migrations/online/migration-runner.js';
import { PHASES, type Phase } from '../migrations/online/phases.js';
import { type BackfillCliOptions, backfillOptions, verifyOptions } from './backfill-progress.js';
import { type CliIo, EXIT, type GlobalOptions, positiveNumber, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { renderTable } from './render-table.js';

interface OnlineOptions extends GlobalOptions, BackfillCliOptions {
  wait?: number;
  yes?: boolean;
  dryRun?: boolean;
  drop?: boolean;
  until?: Phase;
}

export function registerOnline(program: Command, io: CliIo, run: Run): void {
  const online = program.command('online').description('drive an online migration of the config (dual write, backfill, verify, shadow read, cutover, cleanup)');
  const step = (name: string, description: string, work: (runner: ReturnType<KitRunner>, options: OnlineOptions, migration: string) => Promise<void>) =>
    online
      .command(name)
      .argument('<migration>', "the migration's name in onlineMigrations")
      .description(description)
      .option('--wait <ms>', 'how long a phase change waits for every instance (default 10000)', positiveNumber('wait'))
      .action(
        run(async (migration: string, _options: unknown, command: Command) => {
          const options = command.optsWithGlobals<OnlineOptions>();
          return withKit(options.config, async (kit) => {
            const runner = kit.onlineMigration(migration);
            await work(runner, options, migration);
            io.out(options.json ? JSON.stringify(await runner.status(), null, 2) : statusTables(await runner.status(), io.columns));
            return EXIT.ok;
          });
        }),
      );
  const copying = (command: Command) =>
    command
      .option('--max-rate <rows/s>', 'rows per second over every shard together', positiveNumber('max-rate'))
      .option('--max-lag <ms>', 'pause while a replica lags more than this (default 1000)', positiveNumber('max-lag'))
      .option('--batch <rows>', 'rows per batch (default 5000; lower for wide rows)', positiveNumber('batch'));
  step('status', 'print its phase, gates, backfill checkpoints, verify and instances', async () => {});
  step('start', 'begin dual writing (pending -> dual_write)', async (runner) => {
    await runner.start();
  });
  step('advance', 'move one phase forward if its gate is open', async (runner, options) => {
    await runner.advance({ waitForAcksMs: options.wait ?? 10_000 });
  });
  step('rollback', 'move one phase back (every write so far is in both tables)', async (runner, options) => {
    await runner.rollback({ waitForAcksMs: options.wait ?? 10_000 });
  });
  copying(
    step('backfill', 'copy the remaining rows (resumes from the checkpoints); phase backfill', async (runner, options, migration) => {
      const { bar, options: backfill } = backfillOptions(`backfill ${migration}`, options, io.progress, io.columns);
      try {
        await runner.backfill(backfill);
      } finally {
        bar.stop();
      }
    }),
  );
  step('verify', 'compare the tables chunk by chunk and repair what differs', async (runner) => {
    const report = await runner.verify(verifyOptions(io.err));
    io.err(`verify: ${report.rowsChecked} rows checked, ${report.differences} differences, ${report.repaired} repaired, ${report.unrepaired} left`);
  });
  copying(
    step('run', 'drive it phase by phase to cutover (or --until PHASE); a rerun resumes', async (runner, options, migration) => {
      const { bar, options: backfill } = backfillOptions(`backfill ${migration}`, options, io.progress, io.columns);
      try {
        await drive(runner, {
          until: options.until ?? 'cutover',
          backfill,
          verify: verifyOptions(io.err),
          waitForAcksMs: options.wait ?? 10_000,
          onPhase: (phase) => io.err(`phase ${phase}`),
        });
      } finally {
        bar.stop();
      }
    }).option('--until <phase>', `stop at this phase: ${PHASES.join(', ')} (default cutover)`, (text: string) => {
      if (!(PHASES as readonly string[]).includes(text)) throw new UsageError(`--until needs one of ${PHASES.join(', ')}`);
      return text as Phase;
    }),
  );
  step('cleanup', 'in phase cleanup: retire the old table (rename, or --drop), only with --yes', async (runner, options) => {
    const steps = await runner.cleanup({ yes: options.yes === true, dryRun: options.dryRun === true, action: options.drop ? 'drop' : 'rename' });
    for (const line of steps) io.err(line);
    if (!options.yes && !options.dryRun) io.err('nothing changed: add --yes to retire the old table (or --dry-run to only list the steps)');
  })
    .option('--yes', 'really retire the old table')
    .option('--dry-run', 'only list the steps')
    .option('--drop', 'drop the old table instead of renaming it');
}

type KitRunner = Parameters<Parameters<typeof withKit>[1]>[0]['onlineMigration'];

export function statusTables(status: MigrationStatus, width: number): string {
  const summary = renderTable(
    ['migration', 'phase', 'version', 'next', { header: 'shadow mismatches', optional: true }, 'can advance'],
    [[status.name, status.phase, status.version, status.next ?? '(done)', status.shadowMismatches, status.blockedBy.length === 0 ? 'yes' : 'no']],
    width,
  );
  const blocked = status.blockedBy.map((reason) => `  blocked: ${reason}`).join('\n');
  const backfill = renderTable(
    ['shard', 'rows copied', 'done', { header: 'last key', optional: true, wrap: true }],
    status.backfill.map((shard) => [shard.shard, shard.rows, shard.done ? 'yes' : 'no', shard.lastKey ? JSON.stringify(shard.lastKey) : '']),
    width,
  );
  const verify = status.verify
    ? renderTable(
        ['verified at version', 'rows checked', 'differences', 'repaired', 'unrepaired'],
        [[status.verify.version, status.verify.rowsChecked, status.verify.differences, status.verify.repaired, status.verify.unrepaired]],
        width,
      )
    : 'verify: not run in this phase';
  const instances = renderTable(
    [{ header: 'instance', wrap: true }, 'applies version', 'current', 'lease ends in s'],
    status.instances.map((instance) => [instance.instance, instance.version, instance.current ? 'yes' : 'NO', Math.round((instance.leaseUntil - Date.now()) / 1000)]),
    width,
  );
  return [summary, blocked, '', backfill, '', verify, '', instances].filter((part, index) => part !== '' || index > 1).join('\n');
}
