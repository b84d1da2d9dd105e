/**
 * What `kit.status()` reports: every shard with its share of the ring, every node with its role,
 * breaker, admission counts and (for replicas) the lag assumed now, and the migrations and
 * rebalance this instance follows, and the degradation level in force. With `probe`, every node is also asked to answer within a
 * bound, so that a server that is down or stopped answering shows as such even before any
 * query failed on it.
 */
import { withScope } from '../access/call-scope.js';
import type { NodeRole } from '../config/config-types.js';
import type { BreakerState } from '../resilience/node-breaker.js';
import type { MigrationCoordinator } from '../migrations/online/migration-coordinator.js';
import type { RebalanceFollower } from '../rebalance/rebalance-follower.js';
import type { CacheStats } from '../cache/read-cache.js';
import type { InstanceStats, RedisTier } from '../cache/redis-tier.js';
import type { LagMonitor } from '../replicas/lag-monitor.js';
import { lagAt } from '../replicas/lag-reading.js';
import type { NodeHandle, Topology } from '../topology/topology.js';
import type { ShardKitError } from '../errors.js';
import type { DegradationStatus } from './kit-degradation.js';

/** The outcome of a probe: `down` refused or failed, `stalled` did not answer within the bound. */
export type NodeHealth = 'up' | 'down' | 'stalled';

export interface NodeStatus {
  shard: string;
  node: string;
  /** What it is now: after a failover the promoted replica is the primary. */
  role: NodeRole;
  /** An old primary a failover replaced: never written to, nor read, until the configuration changes. */
  fenced?: true;
  /** Where the node is, without credentials. */
  where: string;
  breaker: BreakerState;
  inFlight: number;
  /** Queries admitted at once now (loadShedding.maxInFlight, or the adaptive limit). */
  limit: number;
  /** Queries waiting for admission. */
  queued: number;
  /** Queries shed since the kit started. */
  shed: number;
  /** With `probe`: whether the node answered. */
  health?: NodeHealth;
  /** Replicas: the lag assumed now (undefined when unknown). */
  lagMs?: number;
  /** Replicas: how old the lag reading is. */
  readingAgeMs?: number;
  /** Replicas: why the lag is unknown; any node: why its probe failed. */
  problem?: string;
}

export interface ShardStatus {
  shard: string;
  weight: number;
  /** Connected, owning no keys (waiting to be added by a rebalance). */
  standby: boolean;
  /** Hash slots the shard owns, of 1,048,576. */
  slots: number;
}

export interface KitStatus {
  shards: ShardStatus[];
  nodes: NodeStatus[];
  /** Online migrations this kit follows, with the phase it applies. */
  migrations: { name: string; phase: string; version: number }[];
  /** The last rebalance this kit applies (absent when none ever ran); `cleaned` once it is over. */
  rebalance?: { phase: string; version: number; switching: boolean; cleaned: boolean };
  /** The read cache, when used: this process's counters, and with Redis those every instance reported lately. */
  cache?: { process: CacheStats; instances?: InstanceStats<CacheStats>[] };
  /** The degradation level in force, who set it, and its effects (docs/degradation.md). */
  degradation?: DegradationStatus;
}

export interface StatusOptions {
  /** Ask every node to answer within `probeTimeoutMs` (default 2000). */
  probe?: boolean;
  probeTimeoutMs?: number;
}

export interface StatusSources {
  topology: Topology;
  shardConfigs: readonly { name: string; weight: number }[];
  monitor: LagMonitor;
  coordinator: MigrationCoordinator;
  follower: RebalanceFollower;
  cache: { stats(): CacheStats; shared?: Pick<RedisTier, 'instanceStats'> } | undefined;
  degradation?: () => DegradationStatus;
}

export async function kitStatus(sources: StatusSources, options: StatusOptions = {}): Promise<KitStatus> {
  const { topology, monitor, coordinator, follower } = sources;
  const nodes = topology.nodes();
  const health = options.probe ? await Promise.all(nodes.map((node) => probe(node, options.probeTimeoutMs ?? 2000))) : undefined;
  const now = Date.now();
  const nodeStatuses = nodes.map((node, index): NodeStatus => {
    const { gate } = node;
    const checked = health?.[index];
    const role = topology.roleOf(node);
    const base: NodeStatus = {
      shard: node.config.shard,
      node: node.config.name,
      role: role === 'primary' ? 'primary' : 'replica',
      ...(role === 'fenced' ? { fenced: true as const } : {}),
      where: node.config.description,
      breaker: gate.breaker.state,
      inFlight: gate.inFlight,
      limit: gate.admission.limit,
      queued: gate.admission.queued,
      shed: gate.admission.shed,
      ...(checked ? { health: checked.health } : {}),
      ...(checked?.problem ? { problem: checked.problem } : {}),
    };
    if (role !== 'replica') return base;
    const reading = monitor.reading(node);
    const lagMs = lagAt(reading, now);
    const lagProblem = reading?.problem ?? (reading ? undefined : 'not measured yet');
    return {
      ...base,
      ...(lagMs === undefined ? {} : { lagMs }),
      ...(reading ? { readingAgeMs: now - reading.measuredAt } : {}),
      ...(base.problem === undefined && lagProblem !== undefined ? { problem: lagProblem } : {}),
    };
  });
  const slots = topology.ring.slotCounts();
  const shards = sources.shardConfigs.map((shard) => ({ shard: shard.name, weight: shard.weight, standby: !slots.has(shard.name), slots: slots.get(shard.name) ?? 0 }));
  const migrations = coordinator.names.map((name) => ({ name, phase: 'pending', version: 0, ...coordinator.phaseOf(name) }));
  const moving = follower.applied;
  const rebalance = moving && { ...moving, version: coordinator.topologyVersion ?? 0 };
  const instances = await sources.cache?.shared?.instanceStats<CacheStats>();
  const cache = sources.cache && { process: sources.cache.stats(), ...(instances ? { instances } : {}) };
  const degradation = sources.degradation?.();
  return { shards, nodes: nodeStatuses, migrations, ...(rebalance ? { rebalance } : {}), ...(cache ? { cache } : {}), ...(degradation ? { degradation } : {}) };
}

/**
 * `select 1` as a health probe: no admission, bounded; a timeout (of the statement, or of the
 * connection) means stalled, any other failure down. An open breaker answers for the node with
 * the failure that opened it.
 */
async function probe(node: NodeHandle, timeoutMs: number): Promise<{ health: NodeHealth; problem?: string }> {
  try {
    await withScope({ priority: 'health', timeoutMs, purpose: 'maintenance' }, () => node.knex.raw('select 1'));
    return { health: 'up' };
  } catch (error) {
    const failure = error as ShardKitError;
    const cause = failure.code === 'SHARD_UNAVAILABLE' ? (failure.cause as ShardKitError | undefined) : failure;
    // A connection that timed out met a host that took the connection and never answered: stalled too.
    const stalled = cause?.code === 'QUERY_TIMEOUT' || (cause?.code === 'CONNECTION_FAILED' && /time(d)? ?out|timeout expired/i.test(cause.message));
    return { health: stalled ? 'stalled' : 'down', problem: failure.message };
  }
}
