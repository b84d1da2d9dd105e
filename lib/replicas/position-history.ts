/**
 * The positions a shard's primary was seen at, with when (local time the request was sent):
 * what turns a replica's applied position into a proof of freshness. A replica that has applied
 * position P holds every commit made before the last moment the primary was seen at P, so its
 * freshness is the newest observation its position reaches. While the primary is idle its
 * position stays put, and each new observation of it makes every caught-up replica fresh as of
 * that moment without asking the replica again; under writes, a lagging replica's lag is known
 * from the observation it reached, to within one monitor interval.
 *
 * Observations of one position are kept as one run (its last sighting is what counts); runs
 * older than the window are dropped, so a replica further behind than the window has no proof
 * from here.
 */
export interface PositionRun {
  position: string;
  lastSeenAt: number;
}

export class PositionHistory {
  private readonly runs: PositionRun[] = [];

  constructor(private readonly windowMs: number) {}

  /** The primary was at `position` at local time `seenAt` (positions only move forward). */
  record(position: string, seenAt: number): void {
    const newest = this.runs.at(-1);
    if (newest?.position === position) newest.lastSeenAt = Math.max(newest.lastSeenAt, seenAt);
    else this.runs.push({ position, lastSeenAt: seenAt });
    const horizon = seenAt - this.windowMs;
    let expired = 0;
    while (expired < this.runs.length - 1 && this.runs[expired]!.lastSeenAt < horizon) expired++;
    if (expired > 0) this.runs.splice(0, expired);
  }

  get newest(): PositionRun | undefined {
    return this.runs.at(-1);
  }

  /**
   * The local time before which a node at `applied` held every commit: the last sighting of the
   * newest position it has reached; undefined when it reached none in the window.
   */
  freshAsOf(applied: string, reached: (position: string, target: string) => boolean): number | undefined {
    for (let index = this.runs.length - 1; index >= 0; index--) {
      const run = this.runs[index]!;
      if (reached(applied, run.position)) return run.lastSeenAt;
    }
    return undefined;
  }
}
