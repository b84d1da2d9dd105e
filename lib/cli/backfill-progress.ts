/**
 * Progress of the long steps of a migration or rebalance: one bar over every unit of a
 * backfill (its total the rows counted at its start, raised if rows arrive meanwhile), and a
 * line per shard for verify, with that shard's own counts.
 */
import type { BackfillProgress } from '../migrations/online/backfill.js';
import type { VerifyOptions } from '../migrations/online/verify.js';
import { Progress } from './progress.js';

export interface BackfillCliOptions {
  maxRate?: number;
  maxLag?: number;
  batch?: number;
}

/** The backfill options of the CLI flags, with a progress bar in `stream`. */
export function backfillOptions(label: string, options: BackfillCliOptions, stream: NodeJS.WriteStream, width?: number) {
  const units = new Map<string, { copied: number; total: number; done: boolean }>();
  const bar = new Progress(label, { unit: 'rows', stream, ...(width ? { width } : {}) });
  return {
    bar,
    options: {
      ...(options.maxRate ? { maxRowsPerSecond: options.maxRate } : {}),
      ...(options.maxLag ? { maxLagMs: options.maxLag } : {}),
      ...(options.batch ? { batchSize: options.batch } : {}),
      onProgress: (progress: BackfillProgress) => {
        units.set(progress.shard, { copied: progress.copied, total: progress.total, done: progress.done });
        let copied = 0;
        let total = 0;
        for (const unit of units.values()) {
          copied += unit.copied;
          total += Math.max(unit.total, unit.copied);
        }
        const done = [...units.values()].every((unit) => unit.done);
        bar.update(copied, total, { done, ...(progress.throttled ? { note: `(throttled: ${progress.throttled})` } : {}) });
      },
    },
  };
}

/** verify's options with a line per pass and shard as it ends, with that shard's own counts. */
export function verifyOptions(write: (line: string) => void, walkKeys = false): VerifyOptions {
  return {
    walkKeys,
    onProgress: (progress) => {
      if (!progress.finished) return;
      const what = progress.pass === 'source' ? `${progress.rowsChecked.toLocaleString('en')} source rows compared with the target` : `${progress.rowsChecked.toLocaleString('en')} target rows checked for a source row`;
      write(`verify ${progress.shard}: ${what}, ${progress.differences.toLocaleString('en')} differences`);
    },
  };
}
