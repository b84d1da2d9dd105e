/**
 * State changes a kit reports as events, for logs and metrics (`kit.on('breaker', ...)`).
 * Only changes: a query is reported by the 'query' event, a state by one of these when it moves.
 */
/** A node's circuit breaker: closed (calls go through), open (they fail fast), half-open (one trial call). */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerEvent {
  shard: string;
  node: string;
  state: BreakerState;
}

/** A replica became usable for default reads (lag known and within `reads.maxLagMs`) or stopped being. */
export interface ReplicaEvent {
  shard: string;
  node: string;
  fresh: boolean;
  lagMs: number | undefined;
  problem?: string;
}

/** This instance applies a new phase of an online migration. */
export interface PhaseEvent {
  migration: string;
  phase: string;
  version: number;
}

/** A backfill started (reason set) or stopped (reason undefined) pausing for replica lag or load. */
export interface ThrottleEvent {
  migration: string;
  reason: string | undefined;
}

/** A query that ran on more than one shard. */
export interface ScatterEvent {
  table: string;
  shards: number;
  /** Shards that did not answer (kit.gather), 0 for a complete result. */
  missing: number;
}

/** Where a degradation level came from: the health signal, or an operator's override in the control database. */
export type DegradationSource = 'signal' | 'override';

/** The kit's degradation level changed (or the same level passed between the signal and an override). */
export interface DegradationEvent {
  from: number;
  to: number;
  source: DegradationSource;
  /** Why: the figures that crossed or recovered, or the override's reason. */
  reason: string;
  /** The signal's figures when it moved the level. */
  p99Ms?: number;
  errorRate?: number;
}
