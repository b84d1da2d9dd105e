/** Every event a kit emits (`kit.on(name, listener)`), in one place. */
import type { StatementEvent } from '../access/node-gate.js';
import type { QueryEvent } from '../engine/routed-shard-access.js';
import type { BreakerEvent, DegradationEvent, PhaseEvent, ReplicaEvent, ScatterEvent, ThrottleEvent } from '../observability/state-events.js';
import type { TwoPhaseEvent } from '../transactions/atomic-commit.js';
import type { CacheOutcome } from '../cache/read-cache.js';
import type { RecoveryReport } from '../transactions/recover-prepared.js';
import type { FailoverEvent } from './primary-failover.js';

export interface ShardKitEvents {
  /** A routed query ran on a node (one per shard it ran on). */
  query: [QueryEvent];
  /** Any statement ran on a node: routed queries, transactions, migrations, probes. */
  statement: [StatementEvent];
  breaker: [BreakerEvent];
  replica: [ReplicaEvent];
  phase: [PhaseEvent];
  throttle: [ThrottleEvent];
  scatter: [ScatterEvent];
  /** A step of an atomic transaction's two-phase commit (prepared, decided, committed, ...). */
  twoPhase: [TwoPhaseEvent];
  /** A sweep of prepared transactions settled some, or found some it does not own. */
  recovery: [RecoveryReport];
  /** A shard's primary switch: calls held, a new primary followed, or none found (kit/primary-failover.ts). */
  failover: [FailoverEvent];
  /** A read the cache answered or filled: hit, miss, coalesced (answered by another's read in flight), stale (past its TTL: stale-if-error, stale-while-revalidate, a degradation level). */
  cache: [CacheEvent];
  /** The degradation level changed: from the health signal, or an override (`shardkit degrade set`). */
  degradation: [DegradationEvent];
}

export interface CacheEvent {
  table: string;
  outcome: CacheOutcome;
}

/** Where the layers below the facade report; events are only built while someone listens. */
export interface KitEventSink {
  listenerCount(event: keyof ShardKitEvents): number;
  emit<E extends keyof ShardKitEvents>(event: E, ...payload: ShardKitEvents[E]): boolean;
}
