/**
 * How many calls a node admits at once, following its measured latency: a gradient limiter in
 * the spirit of Netflix's concurrency-limits. Per window (at least `windowMs` and `minSamples`
 * calls), the window's mean latency is compared with the node's floor, the lowest window mean
 * seen (drifting up by FLOOR_DRIFT per window, so that a workload that became slower for good is
 * accepted in time):
 *
 *   gradient = clamp(tolerance x floor / latency, 0.5, 1)
 *   target   = limit x gradient, or limit + sqrt(limit) when gradient is 1 and the limit was used
 *   limit    = halfway from limit to target, within [min, max]
 *
 * So while latency stays within `tolerance` times its floor the limit grows by sqrt(limit) / 2
 * per window up to `max` (the pool), and when it rises the limit shrinks, by at most a quarter per
 * window: calls past it wait in the admission queue, or are shed, instead of piling onto a node
 * that is already slow. Written here: a dozen lines, and it must drive admission's own queue,
 * priorities and drain estimate (admission.ts), which a limiter library would duplicate.
 */

export interface AdaptiveLimitOptions {
  /** Never admit fewer at once. */
  min: number;
  /** Never more: the pool size (or loadShedding.maxInFlight, if lower). */
  max: number;
  windowMs: number;
  minSamples: number;
  /** Latency up to this many times its floor counts as no load. */
  tolerance: number;
}

/** How far the floor rises per window while latency stays above it. */
const FLOOR_DRIFT = 0.05;

export class AdaptiveLimit {
  private limit: number;
  private floorMs: number | undefined;
  private windowStart: number;
  private totalMs = 0;
  private samples = 0;
  private peakInFlight = 0;

  constructor(
    private readonly options: AdaptiveLimitOptions,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.limit = options.max;
    this.windowStart = clock();
  }

  /** The calls to admit at once now. */
  get current(): number {
    return Math.max(this.options.min, Math.min(this.options.max, Math.round(this.limit)));
  }

  /** The latency floor the limit measures against (undefined before the first window). */
  get floor(): number | undefined {
    return this.floorMs;
  }

  /** One admitted call took `ms`; `inFlight` calls were admitted when it ended. */
  observe(ms: number, inFlight: number): void {
    this.totalMs += ms;
    this.samples++;
    this.peakInFlight = Math.max(this.peakInFlight, inFlight);
    const now = this.clock();
    if (now - this.windowStart < this.options.windowMs || this.samples < this.options.minSamples) return;
    const latency = this.totalMs / this.samples;
    this.floorMs = this.floorMs === undefined ? latency : Math.min(latency, this.floorMs * (1 + FLOOR_DRIFT));
    const gradient = Math.max(0.5, Math.min(1, (this.options.tolerance * this.floorMs) / Math.max(latency, 1e-3)));
    // Grow only an uncongested limit that was used: an idle node proves nothing about more load.
    const grows = gradient >= 1 && this.peakInFlight >= this.current / 2;
    const target = grows ? this.limit + Math.sqrt(this.limit) : this.limit * gradient;
    this.limit = Math.max(this.options.min, Math.min(this.options.max, (this.limit + target) / 2));
    this.windowStart = now;
    this.totalMs = 0;
    this.samples = 0;
    this.peakInFlight = 0;
  }
}
