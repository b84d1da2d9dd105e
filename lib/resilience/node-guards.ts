/**
 * Everything that stands between the engine and one node: its circuit breaker and the count
 * of queries in flight on it (which replica choice and status read). Every query to a node,
 * from the engine or the lag monitor, passes through its guard.
 */
import type { BreakerOptions } from '../config/config-types.js';
import type { NodeHandle } from '../topology/topology.js';
import { NodeBreaker } from './node-breaker.js';

export class NodeGuard {
  readonly breaker: NodeBreaker;
  private running = 0;

  constructor(
    readonly node: NodeHandle,
    options: Required<BreakerOptions>,
  ) {
    this.breaker = new NodeBreaker(node, options);
  }

  get inFlight(): number {
    return this.running;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await this.breaker.run(work);
    } finally {
      this.running--;
    }
  }
}

export class NodeGuards {
  private readonly guards: ReadonlyMap<string, NodeGuard>;

  constructor(nodes: readonly NodeHandle[], options: Required<BreakerOptions>) {
    this.guards = new Map(nodes.map((node) => [node.config.name, new NodeGuard(node, options)]));
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
