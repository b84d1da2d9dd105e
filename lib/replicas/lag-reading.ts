/**
 * A lag reading: how fresh a replica was known to be, as a point in local time. Lag at any
 * later moment is `now - freshAsOf`, so a reading ages by itself: a replica measured 200 ms
 * ago at 100 ms lag counts as 300 ms behind.
 *
 * How freshness is established, per probe (all times local, `sentAt` = when the primary's
 * state was requested):
 *   1. The replica's applied position (replay LSN, GTID) reaches a position the primary was
 *      seen at (position-history.ts): it holds every commit made before the last sighting of
 *      the newest such position. While the primary is idle, every new sighting extends this
 *      proof without a replica probe (see lag-monitor.ts).
 *   2. Otherwise the newest heartbeat it applied bounds it: the heartbeat carries the primary's
 *      clock, converted to local time through the primary clock read at `sentAt` (no
 *      cross-host clock comparison). This is how MySQL, whose positions are not read, is measured.
 *   3. Otherwise (replication stopped, no heartbeat yet, primary or replica unreachable) the
 *      lag is unknown: `freshAsOf` is undefined and the replica is never chosen on it.
 * Both bounds are conservative: the primary may have read its position and clock a little after
 * `sentAt`.
 *
 * While the primary is down (its server refuses connections, so nothing can commit there), the
 * replica misses at most the commits made between its last proof of freshness and the moment
 * the primary was first found down: its lag freezes at that moment instead of growing
 * (`frozenAt`), and replica reads go on being served within their bound. A primary that only
 * stopped answering (a timeout), or whose connection broke, proves nothing, since it may still
 * commit for other clients: the replica's last proof keeps ageing, as the guarantee demands.
 */
import type { PrimaryState, ReplicaState } from '../dialect/dialect-adapter.js';
import type { PositionHistory } from './position-history.js';

export interface LagReading {
  /** Local time of the probe. */
  measuredAt: number;
  /** Local time before which the replica held every commit; undefined when unknown. */
  freshAsOf: number | undefined;
  /** The replica's applied position (LSN or GTID) at the probe, for consistency tokens. */
  position: string | undefined;
  /** Why the lag is unknown. */
  problem?: string;
  /** While the primary is down: the moment it was first found down, after which nothing can have committed. */
  frozenAt?: number;
}

export interface PrimaryObservation extends PrimaryState {
  sentAt: number;
}

export function lagAt(reading: LagReading | undefined, now: number): number | undefined {
  if (reading?.freshAsOf === undefined) return undefined;
  return Math.max(0, Math.min(now, reading.frozenAt ?? now) - reading.freshAsOf);
}

/**
 * A replica that answered while its primary is down since `downSince`: fresh as of its last
 * proof (`previous`), its lag frozen at `downSince` (see above); unknown without an earlier proof.
 */
export function readingWhilePrimaryDown(previous: LagReading | undefined, replica: ReplicaState, measuredAt: number, downSince: number): LagReading {
  if (previous?.freshAsOf === undefined) return unknownReading(measuredAt, 'the primary is down and the replica was never measured fresh', replica.position);
  return { measuredAt, freshAsOf: previous.freshAsOf, frozenAt: Math.min(previous.frozenAt ?? downSince, downSince), position: replica.position, problem: 'the primary is down: lag frozen at its last proof' };
}

/**
 * A replica that answered while its primary could not be observed, without proof that the primary
 * is down: it holds every commit before its last proof, so its lag is counted from there and
 * grows with time; unknown without a proof.
 */
export function readingSinceLastProof(proof: LagReading | undefined, replica: ReplicaState, measuredAt: number): LagReading {
  const problem = "the primary's position could not be read: lag counted from the last proof";
  if (proof?.freshAsOf === undefined) return unknownReading(measuredAt, "the primary's position could not be read", replica.position);
  return { measuredAt, freshAsOf: proof.freshAsOf, position: replica.position, problem };
}

export function unknownReading(measuredAt: number, problem: string, position?: string): LagReading {
  return { measuredAt, freshAsOf: undefined, position, problem };
}

export function readingFrom(
  history: PositionHistory,
  primary: PrimaryObservation | undefined,
  replica: ReplicaState,
  measuredAt: number,
  reached: (position: string, target: string) => boolean,
): LagReading {
  if (!replica.replicating) return unknownReading(measuredAt, replica.problem ?? 'replication is not running', replica.position);
  if (!primary) return unknownReading(measuredAt, "the primary's position could not be read", replica.position);
  const reachedAt = replica.position === undefined ? undefined : history.freshAsOf(replica.position, reached);
  if (reachedAt !== undefined) return { measuredAt, freshAsOf: reachedAt, position: replica.position };
  if (replica.heartbeatMs === undefined) return unknownReading(measuredAt, 'no heartbeat has reached it yet', replica.position);
  return { measuredAt, freshAsOf: primary.sentAt - (primary.clockMs - replica.heartbeatMs), position: replica.position };
}
