/**
 * Picks the node that serves a read: an eligible replica when the read allows replicas, else
 * the fallback policy decides: 'primary' reads the primary, 'error' throws ReplicaLagError with
 * what every replica looked like, 'wait' re-judges after each probe cycle for up to `waitMs`,
 * then reads the primary. A read for the primary, or on a shard without replicas, goes to the
 * primary directly.
 */
import type { ReplicaFallback } from '../config/config-types.js';
import { ReplicaLagError } from '../errors.js';
import type { NodeHandle, ShardHandle } from '../topology/topology.js';
import type { LagMonitor } from './lag-monitor.js';
import { judgeReplicas, pickReplica } from './replica-eligibility.js';

export interface ReadPreference {
  from: 'primary' | 'replica';
  maxLagMs: number;
  fallback: ReplicaFallback;
  waitMs: number;
}

export interface NodeChoice {
  node: NodeHandle;
  /** The lag assumed for a replica at the moment it was chosen. */
  lagMs?: number;
  /** Why a replica read went to the primary. */
  fallback?: string;
}

export class ReadRouter {
  private turn = 0;

  constructor(private readonly monitor: LagMonitor) {}

  /** `callDeadline` (performance.now() ms): a 'wait' never waits past the call's own deadline. */
  async choose(shard: ShardHandle, preference: ReadPreference, after: string | undefined, callDeadline = Number.POSITIVE_INFINITY): Promise<NodeChoice> {
    if (preference.from === 'primary') return { node: shard.primary };
    if (shard.replicas.length === 0) return { node: shard.primary, fallback: 'the shard has no replicas' };
    const deadline = Date.now() + Math.min(preference.waitMs, callDeadline - performance.now());
    for (;;) {
      const { choice, verdicts } = this.judge(shard, preference, after);
      if (choice) return choice;
      if (preference.fallback === 'error') throw new ReplicaLagError(shard.name, preference.maxLagMs, verdicts);
      const remaining = deadline - Date.now();
      if (preference.fallback !== 'wait' || remaining <= 0) {
        return { node: shard.primary, fallback: verdicts.map((verdict) => `${verdict.node}: ${verdict.reason}`).join('; ') };
      }
      await this.monitor.nextCycle(remaining);
    }
  }

  private judge(shard: ShardHandle, preference: ReadPreference, after: string | undefined) {
    const candidates = shard.replicas.map((node) => {
      return { node: node.config.name, handle: node, reading: this.monitor.reading(node), available: node.gate.breaker.available, inFlight: node.gate.inFlight };
    });
    const reached = shard.primary.dialect.replication?.reached;
    const { eligible, verdicts } = judgeReplicas(candidates, {
      now: Date.now(),
      maxLagMs: preference.maxLagMs,
      ...(after === undefined ? {} : { after }),
      ...(reached ? { reached } : {}),
    });
    const picked = pickReplica(eligible, this.turn++);
    const choice: NodeChoice | undefined = picked && { node: picked.handle, lagMs: picked.lagMs };
    return { choice, verdicts };
  }
}
