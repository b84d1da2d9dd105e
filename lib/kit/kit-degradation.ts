/**
 * The kit's degradation level (docs/degradation.md) and what it changes for a call.
 *
 * The level is the operator's override while one is set (kit-degradation's store on the control
 * database, polled every `migrations.pollIntervalMs`: every instance follows it, and it may force
 * any level, 0 included), else the health signal's: the outcomes of routed queries in a sliding
 * window (resilience/health-window.ts), judged every `evaluateEveryMs` with hysteresis
 * (resilience/degradation-levels.ts). Every change of level, or of who sets it, is reported once.
 *
 * The effects of the level in force (config/degradation-config.ts) are asked for by the seams
 * that apply them, per call: the gate and the query pipeline refuse background work and reads of
 * several shards, the pipeline relaxes replica bounds and lets the read cache answer past TTL,
 * the backfill throttle pauses. A critical call is never degraded.
 */
import { hostname } from 'node:os';
import type { GuardPriority, Purpose } from '../access/call-scope.js';
import type { LevelEffects, ResolvedDegradation } from '../config/config-types.js';
import { DegradedError, type DegradedRefusal } from '../errors.js';
import type { DegradationEvent, DegradationSource } from '../observability/state-events.js';
import type { ReadPreference } from '../replicas/read-router.js';
import { LevelController, type LevelChange } from '../resilience/degradation-levels.js';
import { type HealthFigures, HealthWindow } from '../resilience/health-window.js';
import type { DegradationOverride, DegradationOverrides } from './degradation-override.js';

/** Errors that say a node is overloaded or gone: the signal counts them as failures. */
const OVERLOAD_CODES: ReadonlySet<string> = new Set(['SHARD_OVERLOADED', 'QUERY_TIMEOUT', 'SHARD_UNAVAILABLE', 'CONNECTION_FAILED']);
/** Outcomes the signal does not count at all: its own refusals (they would hold the level up) and callers' cancels. */
const UNCOUNTED_CODES: ReadonlySet<string> = new Set(['DEGRADED', 'QUERY_CANCELLED']);
/** Work the level may shed: the application's, never the kit's own (backfills pause through their throttle). */
const SHEDDABLE: ReadonlySet<Purpose> = new Set(['query', 'transaction']);

export interface DegradationStatus {
  level: number;
  source: DegradationSource;
  reason: string;
  /** When this level was entered (ms since the epoch). */
  since: number;
  /** The highest level configured. */
  maxLevel: number;
  effects: LevelEffects;
  /** The health signal as last judged; `level` is what it asks for, whatever an override says. */
  signal: { enabled: boolean; level: number } & HealthFigures;
  /** The override in force. */
  override?: DegradationOverride;
}

export interface SetDegradationOptions {
  /** Why, for the event, the log and `shardkit degrade status`. */
  reason?: string;
  /** The override ends by itself after this long (ms); default: until cleared. */
  forMs?: number;
  /** Who sets it; default this host and process. */
  setBy?: string;
}

export interface DegradationParts {
  config: ResolvedDegradation;
  overrides: DegradationOverrides;
  pollIntervalMs: number;
  onChange: (event: DegradationEvent) => void;
  /** ms since the epoch (Date.now): override times are compared across instances. */
  clock?: () => number;
}

interface InForce {
  level: number;
  source: DegradationSource;
  reason: string;
  since: number;
}

export class KitDegradation {
  private readonly config: ResolvedDegradation;
  private readonly clock: () => number;
  private readonly window: HealthWindow;
  private readonly controller: LevelController;
  private figures: HealthFigures = { samples: 0, p99Ms: 0, errorRate: 0 };
  private signalReason = 'no load measured yet';
  private override: DegradationOverride | undefined;
  private inForce: InForce;
  private readonly timers: NodeJS.Timeout[] = [];
  private polling: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly parts: DegradationParts) {
    this.config = parts.config;
    this.clock = parts.clock ?? Date.now;
    this.window = new HealthWindow(this.config, this.clock);
    this.controller = new LevelController(this.config, this.clock());
    this.inForce = { level: 0, source: 'signal', reason: this.signalReason, since: this.clock() };
  }

  get level(): number {
    return this.inForce.level;
  }

  get source(): DegradationSource {
    return this.inForce.source;
  }

  get maxLevel(): number {
    return this.config.levels.length - 1;
  }

  /** The effects of the level in force. */
  get effects(): LevelEffects {
    return this.config.levels[this.inForce.level]!;
  }

  /** One routed query's outcome on a node (its time, its error code): what the signal is made of. */
  observe(durationMs: number, errorCode: string | undefined): void {
    if (errorCode !== undefined && UNCOUNTED_CODES.has(errorCode)) return;
    this.window.record(durationMs, errorCode !== undefined && OVERLOAD_CODES.has(errorCode));
  }

  /**
   * Starts polling the override (the first read at once, without waiting for it: a level is not
   * a correctness matter, and a control database that is down must not slow a kit's start) and
   * judging the signal.
   */
  start(): void {
    void this.poll();
    const every = (ms: number, work: () => unknown) => {
      const timer = setInterval(work, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.parts.pollIntervalMs, () => void this.poll());
    if (this.config.enabled) every(this.config.evaluateEveryMs, () => this.evaluate());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await this.polling;
  }

  /** Judges the signal now (the timer does this every `evaluateEveryMs`). */
  evaluate(): void {
    const now = this.clock();
    this.figures = this.window.figures();
    const change = this.controller.judge(this.figures, now);
    if (change) this.signalReason = describeChange(change, this.config);
    this.reconcile(change && { p99Ms: Math.round(change.figures.p99Ms), errorRate: round(change.figures.errorRate) });
  }

  /** Sets the override on the control database, for every instance; this one follows at once. */
  async set(level: number, options: SetDegradationOptions = {}): Promise<DegradationOverride> {
    if (!Number.isInteger(level) || level < 0 || level > this.maxLevel) throw new RangeError(`degradation level must be a whole number from 0 to ${this.maxLevel}, got ${level}`);
    if (options.forMs !== undefined && !(Number.isFinite(options.forMs) && options.forMs > 0)) throw new RangeError(`forMs must be a positive number of milliseconds, got ${options.forMs}`);
    const setAt = this.clock();
    const override: DegradationOverride = {
      level,
      reason: options.reason ?? 'set by an operator',
      setBy: options.setBy ?? `${hostname()} pid ${process.pid}`,
      setAt,
      ...(options.forMs === undefined ? {} : { expiresAt: setAt + Math.round(options.forMs) }),
    };
    await this.parts.overrides.set(override);
    this.override = override;
    this.reconcile();
    return override;
  }

  /** Removes the override: every instance returns to its signal. */
  async clear(): Promise<void> {
    await this.parts.overrides.clear();
    this.override = undefined;
    this.reconcile(undefined, 'override cleared');
  }

  status(): DegradationStatus {
    const override = this.activeOverride();
    return {
      ...this.inForce,
      maxLevel: this.maxLevel,
      effects: this.effects,
      signal: { enabled: this.config.enabled, level: this.controller.level, ...this.figures },
      ...(override ? { override } : {}),
    };
  }

  /**
   * Refuses, before admission, a background call of the application (a routed query, a
   * transaction) while the level sheds background work; undefined admits it.
   */
  refuseAtNode(priority: GuardPriority, purpose: Purpose, where: { shard: string; node: string }): DegradedError | undefined {
    if (priority !== 'background' || !SHEDDABLE.has(purpose) || !this.effects.shedBackground) return undefined;
    return this.refusal('background', `background ${purpose} on node ${where.node} of shard ${where.shard}`, where);
  }

  /** Refuses a routed query before it runs: background work while shed, a read of several shards at 'critical-only'. */
  refuseQuery(priority: GuardPriority, query: { table: string; read: boolean; shards: number }): DegradedError | undefined {
    const { effects } = this;
    if (priority === 'background' && effects.shedBackground) return this.refusal('background', `background ${query.read ? 'read' : 'write'} of ${query.table}`);
    if (priority !== 'critical' && query.read && query.shards > 1 && effects.scatter === 'critical-only') {
      return this.refusal('scatter', `${priority} read of ${query.table} on ${query.shards} shards`);
    }
    return undefined;
  }

  /** A replica read's preference under the level: its lag bound relaxed for non-critical callers. */
  readPreference(read: ReadPreference, priority: GuardPriority): ReadPreference {
    const relaxed = this.effects.replicaMaxLagMs;
    if (read.from !== 'replica' || priority === 'critical' || relaxed <= read.maxLagMs) return read;
    return { ...read, maxLagMs: relaxed };
  }

  /** How long past their TTL cached entries may answer this caller instead of a read (0: not at all). */
  staleMs(priority: GuardPriority): number {
    return priority === 'critical' ? 0 : this.effects.serveStaleMs;
  }

  /** Why backfills pause now, or undefined. */
  throttleReason(): string | undefined {
    return this.effects.pauseBackfill ? `degradation level ${this.level} (${this.source})` : undefined;
  }

  private refusal(refused: DegradedRefusal, what: string, where: { shard?: string; node?: string } = {}): DegradedError {
    return new DegradedError(this.level, refused, what, this.retryAfterMs(), where);
  }

  /** When the level could fall: the override's end, or the signal's earliest step down. */
  private retryAfterMs(): number {
    const now = this.clock();
    const override = this.activeOverride();
    if (override) return Math.round(override.expiresAt === undefined ? Math.max(this.config.minHoldMs, this.parts.pollIntervalMs) : Math.max(this.parts.pollIntervalMs, override.expiresAt - now));
    return Math.round(Math.max(this.config.evaluateEveryMs, this.controller.earliestStepDown() - now));
  }

  private poll(): Promise<void> {
    this.polling ??= this.parts.overrides
      .read()
      .then(
        (override) => {
          const cleared = this.override !== undefined && override === undefined;
          this.override = override;
          if (cleared) this.reconcile(undefined, 'override cleared');
        },
        // The control database cannot be read: keep following what it said last.
        () => undefined,
      )
      .then(() => this.reconcile())
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  private activeOverride(): DegradationOverride | undefined {
    const override = this.override;
    if (!override || (override.expiresAt !== undefined && override.expiresAt <= this.clock())) return undefined;
    // An override stored by a config with more levels applies as this config's highest.
    return override.level > this.maxLevel ? { ...override, level: this.maxLevel } : override;
  }

  /** The level in force from the override and the signal; reports a change of level or of source. */
  private reconcile(figures?: { p99Ms: number; errorRate: number }, note?: string): void {
    if (this.stopped) return;
    const override = this.activeOverride();
    const ended = note ?? (this.override !== undefined && !override ? 'override expired' : undefined);
    const next = override
      ? { level: override.level, source: 'override' as const, reason: `override: ${override.reason} (${override.setBy})` }
      : { level: this.controller.level, source: 'signal' as const, reason: ended ? `${ended}; signal: ${this.signalReason}` : this.signalReason };
    const before = this.inForce;
    if (next.level === before.level && next.source === before.source) {
      this.inForce = { ...before, reason: next.reason };
      return;
    }
    this.inForce = { ...next, since: this.clock() };
    const event: DegradationEvent = { from: before.level, to: next.level, source: next.source, reason: next.reason };
    if (next.source === 'signal') Object.assign(event, figures ?? { p99Ms: Math.round(this.figures.p99Ms), errorRate: round(this.figures.errorRate) });
    this.parts.onChange(event);
  }
}

function describeChange(change: LevelChange, config: ResolvedDegradation): string {
  const { figures } = change;
  const measured = `p99 ${Math.round(figures.p99Ms)} ms, error rate ${percent(figures.errorRate)} over ${figures.samples} calls`;
  if (change.to > change.from) {
    const crossed = config.thresholds[change.to - 1]!;
    return `${measured}: above level ${change.to}'s threshold (p99 ${crossed.p99Ms} ms or error rate ${percent(crossed.errorRate)})`;
  }
  if (figures.samples < config.minSamples) return `only ${figures.samples} calls in the window (fewer than ${config.minSamples}): quiet`;
  const left = config.thresholds[change.from - 1]!;
  return `${measured}: below ${percent(config.recoverBelow)} of level ${change.from}'s threshold (p99 ${left.p99Ms} ms, error rate ${percent(left.errorRate)})`;
}

function percent(share: number): string {
  return `${Number((share * 100).toFixed(1))}%`;
}

function round(share: number): number {
  return Number(share.toFixed(4));
}
