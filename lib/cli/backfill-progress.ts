/** A backfill (online migration or rebalance) with one progress bar over every unit: rows/s and ETA. */
import type { MigrationRecord } from '../migrations/online/control-store.js';
import type { OnlineMigrationRunner } from '../migrations/online/migration-runner.js';
import { ProgressBar } from './progress-bar.js';

export interface BackfillCliOptions {
  maxRate?: number;
  maxLagMs?: number;
  batch?: number;
}

export async function backfillWithProgress(
  runner: Pick<OnlineMigrationRunner, 'backfill'>,
  label: string,
  options: BackfillCliOptions,
  stream: NodeJS.WriteStream = process.stderr,
): Promise<MigrationRecord> {
  const units = new Map<string, { done: number; total: number }>();
  const bar = new ProgressBar(label, stream);
  const record = await runner.backfill({
    ...(options.maxRate ? { maxRowsPerSecond: options.maxRate } : {}),
    ...(options.maxLagMs ? { maxLagMs: options.maxLagMs } : {}),
    ...(options.batch ? { batchSize: options.batch } : {}),
    onProgress: (progress) => {
      units.set(progress.shard, { done: progress.copied, total: progress.total });
      const totals = [...units.values()].reduce((sum, entry) => ({ done: sum.done + entry.done, total: sum.total + entry.total }), { done: 0, total: 0 });
      bar.update(totals.done, totals.total, progress.throttled ? `(throttled: ${progress.throttled})` : '');
    },
  });
  bar.finish();
  return record;
}
