/**
 * Everything that stands between the engine and one node: its circuit breaker, and admission
 * control with load shedding. At most `maxInFlight` queries run on a node at once; the rest
 * wait in a queue of at most `maxQueued`, served critical first, then normal, then background
 * (FIFO within a priority). When the queue is full, the lowest-priority waiter is shed to make
 * room for a higher one, so background work goes first, then normal; a query that finds no room
 * fails at once with ShardOverloadedError and a `retryAfterMs` estimate. Background work may
 * only fill half the queue. Nothing admitted is dropped: every query either runs once or is
 * rejected. Health checks (lag probes) bypass admission, so that saturation never blinds the
 * monitor; an open breaker fails fast before anything queues.
 */
import type { BreakerOptions, LoadSheddingOptions } from '../config/config-types.js';
import { type QueryPriority, ShardOverloadedError } from '../errors.js';
import type { NodeHandle } from '../topology/topology.js';
import { type BreakerState, NodeBreaker } from './node-breaker.js';

/** 'health': the lag monitor's probes, never queued or shed. */
export type GuardPriority = QueryPriority | 'health';

const PRIORITIES: readonly QueryPriority[] = ['critical', 'normal', 'background'];

interface Waiter {
  admit: () => void;
  shed: (error: ShardOverloadedError) => void;
}

export class NodeGuard {
  readonly breaker: NodeBreaker;
  private running = 0;
  private admitted = 0;
  private readonly queues: Record<QueryPriority, Waiter[]> = { critical: [], normal: [], background: [] };
  private averageMs = 5;
  private shedCount = 0;

  constructor(
    readonly node: NodeHandle,
    breakerOptions: Required<BreakerOptions>,
    private readonly limits: Required<LoadSheddingOptions>,
    onBreakerChange: (node: NodeHandle, state: BreakerState) => void,
  ) {
    this.breaker = new NodeBreaker(node, breakerOptions, (state) => onBreakerChange(node, state));
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return PRIORITIES.reduce((total, priority) => total + this.queues[priority].length, 0);
  }

  /** Queries shed so far. */
  get shed(): number {
    return this.shedCount;
  }

  async run<T>(work: () => Promise<T>, priority: GuardPriority = 'normal'): Promise<T> {
    this.breaker.assertAvailable();
    const gated = priority !== 'health';
    if (gated) await this.admit(priority);
    this.running++;
    const started = performance.now();
    try {
      const result = await this.breaker.run(work);
      this.averageMs += (performance.now() - started - this.averageMs) / 10;
      return result;
    } finally {
      this.running--;
      if (gated) this.release();
    }
  }

  private admit(priority: QueryPriority): Promise<void> {
    if (this.admitted < this.limits.maxInFlight && this.queued === 0) {
      this.admitted++;
      return Promise.resolve();
    }
    if (!this.hasRoomFor(priority)) {
      const victim = this.lowestWaiterBelow(priority);
      if (!victim) throw this.overloaded(priority);
      victim.waiter.shed(this.overloaded(victim.priority));
    }
    return new Promise<void>((resolve, reject) => {
      this.queues[priority].push({ admit: resolve, shed: reject });
    });
  }

  private hasRoomFor(priority: QueryPriority): boolean {
    const capacity = priority === 'background' ? Math.floor(this.limits.maxQueued / 2) : this.limits.maxQueued;
    return this.queued < capacity;
  }

  /** Removes and returns the newest waiter of the lowest priority below `priority`. */
  private lowestWaiterBelow(priority: QueryPriority): { waiter: Waiter; priority: QueryPriority } | undefined {
    for (const candidate of [...PRIORITIES].reverse()) {
      if (PRIORITIES.indexOf(candidate) <= PRIORITIES.indexOf(priority)) return undefined;
      const waiter = this.queues[candidate].pop();
      if (waiter) return { waiter, priority: candidate };
    }
    return undefined;
  }

  private release(): void {
    for (const priority of PRIORITIES) {
      const next = this.queues[priority].shift();
      if (next) {
        next.admit();
        return;
      }
    }
    this.admitted--;
  }

  private overloaded(priority: QueryPriority): ShardOverloadedError {
    this.shedCount++;
    const retryAfterMs = Math.max(10, Math.round((this.averageMs * (this.queued + 1)) / this.limits.maxInFlight));
    return new ShardOverloadedError(this.node.config.shard, this.node.config.name, priority, retryAfterMs);
  }
}

export class NodeGuards {
  private readonly guards: ReadonlyMap<string, NodeGuard>;

  constructor(
    nodes: readonly NodeHandle[],
    breakerOptions: Required<BreakerOptions>,
    limits: Required<LoadSheddingOptions>,
    onBreakerChange: (node: NodeHandle, state: BreakerState) => void = () => {},
  ) {
    this.guards = new Map(nodes.map((node) => [node.config.name, new NodeGuard(node, breakerOptions, limits, onBreakerChange)]));
  }

  of(node: NodeHandle): NodeGuard {
    const guard = this.guards.get(node.config.name);
    if (!guard) throw new RangeError(`no guard for node ${node.config.name}`);
    return guard;
  }

  shutdown(): void {
    for (const guard of this.guards.values()) guard.breaker.shutdown();
  }
}
