/**
 * A lag reading: how fresh a replica was known to be, as a point in local time. Lag at any
 * later moment is `now - freshAsOf`, so a reading ages by itself: a replica measured 200 ms
 * ago at 100 ms lag counts as 300 ms behind.
 *
 * How freshness is established, per probe (all times local, `sentAt` = when the primary's
 * state was requested):
 *   1. The replica has applied the primary's position read at `sentAt` (replay LSN >= current
 *      LSN, GTID >= binlog GTID): it holds every commit made before `sentAt`.
 *   2. Otherwise the newest heartbeat it applied bounds it: the heartbeat carries the primary's
 *      clock, converted to local time through the primary clock read at `sentAt` (no
 *      cross-host clock comparison).
 *   3. Otherwise (replication stopped, no heartbeat yet, primary or replica unreachable) the
 *      lag is unknown: `freshAsOf` is undefined and the replica is never chosen on it.
 * Both bounds are conservative: the primary may have read its clock a little after `sentAt`.
 */
import type { PrimaryState, ReplicaState } from '../dialect/dialect-adapter.js';

export interface LagReading {
  /** Local time of the probe. */
  measuredAt: number;
  /** Local time before which the replica held every commit; undefined when unknown. */
  freshAsOf: number | undefined;
  /** The replica's applied position (LSN or GTID) at the probe, for consistency tokens. */
  position: string | undefined;
  /** Why the lag is unknown. */
  problem?: string;
}

export interface PrimaryObservation extends PrimaryState {
  sentAt: number;
}

export function lagAt(reading: LagReading | undefined, now: number): number | undefined {
  if (reading?.freshAsOf === undefined) return undefined;
  return Math.max(0, now - reading.freshAsOf);
}

export function unknownReading(measuredAt: number, problem: string, position?: string): LagReading {
  return { measuredAt, freshAsOf: undefined, position, problem };
}

export function readingFrom(
  primary: PrimaryObservation | undefined,
  replica: ReplicaState,
  measuredAt: number,
  reached: (position: string, target: string) => boolean,
): LagReading {
  if (!replica.replicating) return unknownReading(measuredAt, replica.problem ?? 'replication is not running', replica.position);
  if (!primary) return unknownReading(measuredAt, "the primary's position could not be read", replica.position);
  if (replica.position !== undefined && primary.position !== undefined && reached(replica.position, primary.position)) {
    return { measuredAt, freshAsOf: primary.sentAt, position: replica.position };
  }
  if (replica.heartbeatMs === undefined) return unknownReading(measuredAt, 'no heartbeat has reached it yet', replica.position);
  return { measuredAt, freshAsOf: primary.sentAt - (primary.clockMs - replica.heartbeatMs), position: replica.position };
}
