/**
 * Signals read off the kit's measurements, as pure decisions over what the collectors (the lag
 * monitor, the node gates) hold now:
 *
 *   throttleReason   why bulk copying should pause: the kit's degradation level pausing
 *                    backfills, a replica lagging beyond `maxLagMs`, or queries queued on a
 *                    primary (gh-ost's throttle)
 *   freshness        which replicas changed between usable and not for default reads (events)
 */
import type { LagMonitor } from '../replicas/lag-monitor.js';
import { lagAt } from '../replicas/lag-reading.js';
import type { ShardHandle, Topology } from '../topology/topology.js';
import type { ReplicaEvent } from '../observability/state-events.js';

/** `degraded`: the degradation level's reason to pause backfills, if it has one (kit-degradation.ts). */
export function throttleReason(topology: Topology, monitor: LagMonitor, maxLagMs: number, degraded?: string, now = Date.now()): string | undefined {
  if (degraded !== undefined) return degraded;
  for (const shard of topology.shards) {
    const queued = shard.primary.gate.admission.queued;
    if (queued > 0) return `${queued} queries queued on ${shard.primary.config.name}`;
    for (const replica of shard.replicas) {
      const lagMs = lagAt(monitor.reading(replica), now);
      if (lagMs !== undefined && lagMs > maxLagMs) return `${replica.config.name} lags ${lagMs} ms`;
    }
  }
  return undefined;
}

/** Remembers each replica's last verdict and reports the ones that changed. */
export class ReplicaFreshness {
  private readonly fresh = new Map<string, boolean>();

  constructor(
    private readonly monitor: LagMonitor,
    private readonly maxLagMs: number,
  ) {}

  changes(shard: ShardHandle, now = Date.now()): ReplicaEvent[] {
    const events: ReplicaEvent[] = [];
    for (const replica of shard.replicas) {
      const reading = this.monitor.reading(replica);
      const lagMs = lagAt(reading, now);
      const fresh = lagMs !== undefined && lagMs <= this.maxLagMs;
      if (this.fresh.get(replica.config.name) === fresh) continue;
      this.fresh.set(replica.config.name, fresh);
      events.push({ shard: shard.name, node: replica.config.name, fresh, lagMs, ...(reading?.problem ? { problem: reading.problem } : {}) });
    }
    return events;
  }
}
