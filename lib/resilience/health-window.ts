/**
 * The health signal of degradation levels: the p99 latency and the error rate of calls over a
 * sliding window of `windowMs`, in bounded memory whatever the call rate.
 *
 * How: the window is cut into SLICES slices of windowMs / SLICES each; a call lands in the slice
 * of its time, in a latency histogram of log-spaced buckets (each GROWTH times the one below, so
 * a p99 is known to within about 5%). The figures sum the slices still inside the window; a
 * slice that has slid out is emptied when its turn comes again. The p99 reported is the upper
 * bound of the bucket holding the 99th percentile, never above the slowest call seen in the
 * window: a conservative figure, as a threshold needs.
 *
 *   const window = new HealthWindow({ windowMs: 10_000 }, clock);
 *   window.record(12, false); window.record(2400, true);
 *   window.figures();   // { samples: 2, p99Ms: ~2400, errorRate: 0.5 }
 *
 * The clock is injected (ms, Date.now by default), so tests move time themselves.
 */

const SLICES = 20;
/** Each bucket's upper bound is this many times the one below. */
const GROWTH = 1.05;
/** The first bucket holds every call up to this (ms). */
const FLOOR_MS = 0.1;
/** Buckets up to about 10 minutes; slower calls share the last one. */
const BUCKETS = Math.ceil(Math.log(600_000 / FLOOR_MS) / Math.log(GROWTH)) + 1;

export interface HealthFigures {
  /** Calls in the window. */
  samples: number;
  /** The 99th percentile latency (ms), 0 without calls. */
  p99Ms: number;
  /** Share of the calls that failed, 0 without calls. */
  errorRate: number;
}

interface Slice {
  /** Which stretch of time the slice holds now: floor(time / sliceMs). */
  epoch: number;
  calls: number;
  errors: number;
  maxMs: number;
  /** Calls per bucket; allocated on the slice's first call. */
  counts: Uint32Array | undefined;
}

export class HealthWindow {
  private readonly sliceMs: number;
  private readonly slices: Slice[];

  constructor(
    options: { windowMs: number },
    private readonly clock: () => number = Date.now,
  ) {
    this.sliceMs = Math.max(1, options.windowMs / SLICES);
    this.slices = Array.from({ length: SLICES }, () => ({ epoch: -1, calls: 0, errors: 0, maxMs: 0, counts: undefined }));
  }

  /** One call that took `durationMs` and failed or not. */
  record(durationMs: number, failed: boolean): void {
    const epoch = Math.floor(this.clock() / this.sliceMs);
    const slice = this.slices[epoch % SLICES]!;
    if (slice.epoch !== epoch) {
      slice.epoch = epoch;
      slice.calls = 0;
      slice.errors = 0;
      slice.maxMs = 0;
      slice.counts?.fill(0);
    }
    const duration = Number.isFinite(durationMs) && durationMs > 0 ? durationMs : 0;
    slice.calls++;
    if (failed) slice.errors++;
    slice.maxMs = Math.max(slice.maxMs, duration);
    slice.counts ??= new Uint32Array(BUCKETS);
    slice.counts[bucketOf(duration)]!++;
  }

  /** The figures of the calls inside the window now. */
  figures(): HealthFigures {
    const newest = Math.floor(this.clock() / this.sliceMs);
    const live = this.slices.filter((slice) => slice.epoch > newest - SLICES && slice.epoch <= newest && slice.calls > 0);
    const samples = live.reduce((sum, slice) => sum + slice.calls, 0);
    if (samples === 0) return { samples: 0, p99Ms: 0, errorRate: 0 };
    const errors = live.reduce((sum, slice) => sum + slice.errors, 0);
    const maxMs = Math.max(...live.map((slice) => slice.maxMs));
    // The smallest latency at or under which at least 99% of the calls fall.
    const rank = Math.ceil(0.99 * samples);
    let seen = 0;
    let p99Ms = maxMs;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (const slice of live) seen += slice.counts![bucket]!;
      if (seen >= rank) {
        p99Ms = Math.min(upperBoundOf(bucket), maxMs);
        break;
      }
    }
    return { samples, p99Ms, errorRate: errors / samples };
  }
}

function bucketOf(durationMs: number): number {
  if (durationMs <= FLOOR_MS) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(durationMs / FLOOR_MS) / Math.log(GROWTH)));
}

function upperBoundOf(bucket: number): number {
  return FLOOR_MS * GROWTH ** bucket;
}
