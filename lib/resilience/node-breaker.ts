/**
 * A circuit breaker per node (opossum). Only the node's own faults count (refused or dropped
 * connections, timeouts, shutdowns); a unique violation or a syntax error is the caller's and
 * leaves the breaker alone. Open, it fails fast with ShardUnavailableError without touching
 * the network; after `resetTimeoutMs` one trial call is let through (half-open) and its outcome
 * closes or reopens the breaker.
 */
import CircuitBreaker from 'opossum';
import type { BreakerOptions } from '../config/config-types.js';
import type { ErrorClass } from '../dialect/dialect-adapter.js';
import { QueryTimeoutError, ShardUnavailableError } from '../errors.js';
import type { BreakerState } from '../observability/state-events.js';

export type { BreakerState } from '../observability/state-events.js';
export type BreakerOptionsResolved = Required<BreakerOptions>;

type Work = () => Promise<unknown>;

export class NodeBreaker {
  private readonly circuit: CircuitBreaker<[Work], unknown>;
  private readonly resetTimeoutMs: number;
  private openedAt = 0;
  /** The last failure that counted, named by an open breaker's error. */
  private lastFailure: unknown;

  constructor(
    private readonly subject: { shard: string; node: string },
    options: BreakerOptionsResolved,
    classify: (error: unknown) => ErrorClass,
    onChange: (state: BreakerState) => void = () => {},
  ) {
    this.resetTimeoutMs = options.resetTimeoutMs;
    this.circuit = new CircuitBreaker((work: Work) => work(), {
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: options.resetTimeoutMs,
      rollingCountTimeout: options.rollingWindowMs,
      // True means "not the node's fault": only node faults and timeouts count.
      errorFilter: (error: unknown) => {
        const counts = error instanceof QueryTimeoutError || isNodeFault(error, classify);
        if (counts) this.lastFailure = error;
        return !counts;
      },
    });
    this.circuit.on('open', () => {
      this.openedAt = Date.now();
      onChange('open');
    });
    this.circuit.on('halfOpen', () => onChange('half-open'));
    this.circuit.on('close', () => onChange('closed'));
  }

  get state(): BreakerState {
    if (this.circuit.opened) return 'open';
    return this.circuit.halfOpen ? 'half-open' : 'closed';
  }

  /** False while open: calls would fail fast. Half-open counts as available (the trial call). */
  get available(): boolean {
    return !this.circuit.opened;
  }

  /** Throws ShardUnavailableError while open, before anything waits for the node. */
  assertAvailable(): void {
    if (this.circuit.opened) throw this.unavailable();
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return (await this.circuit.fire(work)) as T;
    } catch (error) {
      if ((error as { code?: unknown })?.code === 'EOPENBREAKER') throw this.unavailable();
      throw error;
    }
  }

  /** Counts a failure that happened outside run() (a connection that could not be made). */
  recordFailure(error: unknown): void {
    this.circuit.fire(() => Promise.reject(error)).catch(() => undefined);
  }

  private unavailable(): ShardUnavailableError {
    const retryAfterMs = Math.max(0, this.openedAt + this.resetTimeoutMs - Date.now());
    return new ShardUnavailableError(this.subject.shard, this.subject.node, retryAfterMs, this.lastFailure);
  }

  shutdown(): void {
    this.circuit.shutdown();
  }
}

/** A connection that could not be made is the node's fault, unless its credentials were refused (not retryable). */
function isNodeFault(error: unknown, classify: (error: unknown) => ErrorClass): boolean {
  const failure = error as { code?: unknown; retryable?: unknown };
  if (failure?.code === 'CONNECTION_FAILED') return failure.retryable === true;
  return classify(error).nodeFault;
}
