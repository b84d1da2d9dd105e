/**
 * shardkit tx status | tx recover [--grace-ms MS]: atomic (two-phase) transactions left in doubt.
 * `status` lists every prepared transaction on every shard (shardkit's, with the decision the
 * log holds; and those shardkit does not own, which hold locks and block vacuum until their
 * owner settles them) and exits 5 when any is foreign, undecided past its deadline, or a shard
 * cannot be read. `recover` settles shardkit's: commits the decided ones, rolls back the
 * undecided once past deadline + grace; it exits 1 when a shard could not be read or settled.
 */
import type { Command } from 'commander';
import type { RecoveryReport } from '../transactions/recover-prepared.js';
import { type CliIo, EXIT, type GlobalOptions, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { renderTable } from './render-table.js';

export function registerTx(program: Command, io: CliIo, run: Run): void {
  const tx = program.command('tx').description('atomic (two-phase) transactions left in doubt: status, recover');
  tx.command('status')
    .description('prepared transactions on every shard; exits 5 when one needs attention')
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions>();
        return withKit(options.config, async (kit) => {
          const report = await kit.recoverTransactions({ dryRun: true });
          io.out(options.json ? JSON.stringify(report, null, 2) : renderReport(report, io.columns, 'status'));
          const overdue = report.waiting.some((entry) => entry.deadlineMs + kit.config.transactions.inDoubtGraceMs < Date.now());
          return report.foreign.length > 0 || report.unreachable.length > 0 || overdue ? EXIT.unhealthy : EXIT.ok;
        });
      }),
    );
  tx.command('recover')
    .description('commit decided, roll back abandoned prepared transactions')
    .option('--grace-ms <ms>', 'past its deadline, how long an undecided transaction is left to its coordinator (default: transactions.inDoubtGraceMs)', (text) => {
      const value = Number(text);
      if (!Number.isInteger(value) || value < 0) throw new UsageError(`--grace-ms needs a whole number of milliseconds, got ${JSON.stringify(text)}`);
      return value;
    })
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { graceMs?: number }>();
        return withKit(options.config, async (kit) => {
          const report = await kit.recoverTransactions(options.graceMs === undefined ? {} : { graceMs: options.graceMs });
          io.out(options.json ? JSON.stringify(report, null, 2) : renderReport(report, io.columns, 'recover'));
          return report.failed.length > 0 || report.unreachable.length > 0 ? EXIT.failed : EXIT.ok;
        });
      }),
    );
}

export function renderReport(report: RecoveryReport, width: number, mode: 'status' | 'recover'): string {
  const done = mode === 'recover' ? ['committed', 'rolled back'] : ['to commit', 'to roll back'];
  const rows = [
    ...report.committed.map((entry) => [entry.gtrid, entry.shard, done[0]!, age(entry.ageMs)]),
    ...report.rolledBack.map((entry) => [entry.gtrid, entry.shard, done[1]!, age(entry.ageMs)]),
    ...report.waiting.map((entry) => [entry.gtrid, entry.shard, Date.now() > entry.deadlineMs ? 'undecided, past deadline' : 'deciding', age(entry.ageMs)]),
    ...report.failed.map((entry) => [entry.gtrid, entry.shard, `failed: ${entry.error}`, age(entry.ageMs)]),
    ...report.foreign.map((entry) => [entry.gid, entry.shard, 'not shardkit\'s: settle it yourself', age(entry.ageMs)]),
  ];
  const lines = [
    rows.length === 0 ? 'no prepared transactions' : renderTable(['transaction', 'shard', 'state', 'age'], rows, width),
    ...report.unreachable.map(({ shard, error }) => `cannot read ${shard}: ${error}`),
  ];
  if (mode === 'recover') lines.push(`${report.committed.length} committed, ${report.rolledBack.length} rolled back, ${report.waiting.length} still deciding, ${report.forgotten} decisions forgotten`);
  return lines.join('\n');
}

function age(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
