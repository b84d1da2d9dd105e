/**
 * shardkit online start | status | advance | rollback | verify | backfill | cleanup  NAME
 *   [--max-rate ROWS_PER_S] [--max-lag MS] [--batch N] [--wait MS] [--yes] [--dry-run] [--drop]
 * Drives an online migration declared in the config's `onlineMigrations`; every command prints
 * the migration's status table afterwards.
 */
import type { MigrationStatus } from '../migrations/online/migration-runner.js';
import { type BackfillCliOptions, backfillWithProgress } from './backfill-progress.js';
import { type CliIo, EXIT, UsageError, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export interface OnlineOptions extends BackfillCliOptions {
  config?: string;
  waitMs?: number;
  yes: boolean;
  dryRun: boolean;
  drop: boolean;
}

const ACTIONS = ['start', 'status', 'advance', 'rollback', 'verify', 'backfill', 'cleanup'];

export async function onlineCommand(action: string | undefined, name: string | undefined, options: OnlineOptions, io: CliIo): Promise<number> {
  if (!action || !ACTIONS.includes(action)) throw new UsageError(`online needs one of: ${ACTIONS.join(', ')}`);
  if (!name) throw new UsageError(`online ${action} needs the migration's NAME`);
  return withKit(options.config, async (kit) => {
    const runner = kit.onlineMigration(name);
    switch (action) {
      case 'start':
        await runner.start();
        break;
      case 'advance':
        await runner.advance({ waitForAcksMs: options.waitMs ?? 10_000 });
        break;
      case 'rollback':
        await runner.rollback();
        break;
      case 'backfill':
        await backfillWithProgress(runner, `backfill ${name}`, options);
        break;
      case 'verify': {
        const report = await runner.verify({ onProgress: (progress) => io.err(`verify ${progress.pass} ${progress.shard}: ${progress.rowsChecked} rows, ${progress.differences} differences`) });
        io.out(renderTable(['rows checked', 'chunks', 'differences', 'repaired', 'unrepaired'], [[report.rowsChecked, report.chunks, report.differences, report.repaired, report.unrepaired]]));
        break;
      }
      case 'cleanup': {
        const steps = await runner.cleanup({ yes: options.yes, dryRun: options.dryRun, action: options.drop ? 'drop' : 'rename' });
        for (const step of steps) io.out(step);
        if (!options.yes && !options.dryRun) io.err('nothing changed: add --yes to retire the old table (or --dry-run to only list the steps)');
        break;
      }
    }
    io.out(statusTables(await runner.status()));
    return EXIT.ok;
  });
}

export function statusTables(status: MigrationStatus): string {
  const summary = renderTable(
    ['migration', 'phase', 'version', 'next', 'shadow mismatches', 'can advance'],
    [[status.name, status.phase, status.version, status.next ?? '(done)', status.shadowMismatches, status.blockedBy.length === 0 ? 'yes' : 'no']],
  );
  const blocked = status.blockedBy.map((reason) => `  blocked: ${reason}`).join('\n');
  const backfill = renderTable(
    ['shard', 'rows copied', 'done', 'last key'],
    status.backfill.map((shard) => [shard.shard, shard.rows, shard.done ? 'yes' : 'no', shard.lastKey ? JSON.stringify(shard.lastKey) : '']),
  );
  const verify = status.verify
    ? renderTable(
        ['verified at version', 'rows checked', 'differences', 'repaired', 'unrepaired'],
        [[status.verify.version, status.verify.rowsChecked, status.verify.differences, status.verify.repaired, status.verify.unrepaired]],
      )
    : 'verify: not run in this phase';
  const instances = renderTable(
    ['instance', 'applies version', 'current', 'lease ends in s'],
    status.instances.map((instance) => [instance.instance, instance.version, instance.current ? 'yes' : 'NO', Math.round((instance.leaseUntil - Date.now()) / 1000)]),
  );
  return [summary, blocked, '', backfill, '', verify, '', instances].filter((part, index) => part !== '' || index > 1).join('\n');
}
