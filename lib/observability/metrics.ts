/**
 * Prometheus metrics of a kit (prom-client), in the caller's registry or a new one:
 *
 *   const { registry } = instrumentKit(kit, { registry: promClient.register });
 *   // serve `await registry.metrics()` with registry.contentType on /metrics
 *
 * Counters and histograms follow the kit's events; node, replica and migration gauges are read
 * from the kit when the registry is scraped, so they are never stale and cost nothing between
 * scrapes. Label values are shard, node and table names, never connection details.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StatementEvent } from '../access/node-gate.js';
import type { QueryEvent } from '../engine/routed-shard-access.js';
import type { BreakerState } from '../resilience/node-breaker.js';
import type { FailoverEvent } from '../kit/primary-failover.js';
import type { ShardKit } from '../shard-kit.js';
import type { ScatterEvent } from './state-events.js';

export interface MetricsOptions {
  registry?: Registry;
  /** Prepended to every metric name. Default 'shardkit_'. */
  prefix?: string;
}

export interface KitMetrics {
  registry: Registry;
  /** Stops following the kit and removes its metrics from the registry. */
  detach(): void;
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FANOUT_BUCKETS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

export function instrumentKit(kit: ShardKit, options: MetricsOptions = {}): KitMetrics {
  const registry = options.registry ?? new Registry();
  const name = (suffix: string) => `${options.prefix ?? 'shardkit_'}${suffix}`;
  const registers = [registry];
  const before = new Set(registry.getMetricsAsArray().map((metric) => metric.name));
  const nodeLabels = ['shard', 'node', 'role'] as const;

  const queries = new Counter({ name: name('queries_total'), help: 'Queries run per node, by intent and outcome', labelNames: [...nodeLabels, 'intent', 'outcome'], registers });
  const errors = new Counter({ name: name('query_errors_total'), help: 'Failed queries per node, by shardkit error code', labelNames: ['shard', 'node', 'code'], registers });
  const latency = new Histogram({ name: name('query_duration_seconds'), help: 'Query time per node, queueing included', labelNames: nodeLabels, buckets: LATENCY_BUCKETS, registers });
  const fanOut = new Histogram({ name: name('scatter_fanout_shards'), help: 'Shards a multi-shard query ran on', labelNames: ['table'], buckets: FANOUT_BUCKETS, registers });
  const partial = new Counter({ name: name('scatter_partial_total'), help: 'Multi-shard reads answered without some shards (kit.gather)', labelNames: ['table'], registers });
  const statements = new Counter({
    name: name('statements_total'),
    help: 'Every statement sent to a node (routed queries, transactions, migrations, lag probes), by purpose and outcome',
    labelNames: [...nodeLabels, 'purpose', 'outcome'],
    registers,
  });
  const failovers = new Counter({
    name: name('failover_events_total'),
    help: 'Primary switches per shard by stage (holding, switched, resumed, gave-up) and cause (unplanned, recorded, planned)',
    labelNames: ['shard', 'stage', 'cause'],
    registers,
  });
  const held = new Histogram({ name: name('failover_held_seconds'), help: 'How long primary calls were held by a switch that ended', labelNames: ['shard', 'stage'], buckets: LATENCY_BUCKETS, registers });
  const statementLatency = new Histogram({ name: name('statement_duration_seconds'), help: 'Statement time per node and purpose', labelNames: [...nodeLabels, 'purpose'], buckets: LATENCY_BUCKETS, registers });

  const perNode = (help: string, suffix: string, value: (node: Awaited<ReturnType<ShardKit['status']>>['nodes'][number]) => number | undefined) =>
    new Gauge({
      name: name(suffix),
      help,
      labelNames: nodeLabels,
      registers,
      async collect() {
        this.reset();
        for (const node of (await kit.status()).nodes) {
          const measured = value(node);
          if (measured !== undefined) this.set({ shard: node.shard, node: node.node, role: node.role }, measured);
        }
      },
    });
  perNode('Queries running on the node', 'node_in_flight', (node) => node.inFlight);
  perNode('Queries the node admits at once now (the adaptive limit, or loadShedding.maxInFlight)', 'node_limit', (node) => node.limit);
  perNode('Queries waiting for the node', 'node_queued', (node) => node.queued);
  perNode('Queries shed by the node since the kit started', 'node_shed', (node) => node.shed);
  perNode('Breaker state: 0 closed, 1 half-open, 2 open', 'breaker_state', (node) => BREAKER_VALUE[node.breaker]);
  perNode('Replica lag assumed now, seconds (absent while unknown)', 'replica_lag_seconds', (node) => (node.lagMs === undefined ? undefined : node.lagMs / 1000));
  perNode('Age of the replica lag reading, seconds', 'replica_lag_reading_age_seconds', (node) =>
    node.readingAgeMs === undefined ? undefined : node.readingAgeMs / 1000,
  );

  const coordinator = kit.migrationCoordinator;
  new Gauge({
    name: name('online_migration_phase'),
    help: 'The phase this instance applies, 1 for the current phase of each online migration',
    labelNames: ['migration', 'phase', 'version'],
    registers,
    collect() {
      this.reset();
      for (const migration of coordinator.names) {
        const followed = coordinator.phaseOf(migration);
        if (followed) this.set({ migration, phase: followed.phase, version: String(followed.version) }, 1);
      }
    },
  });
  new Gauge({
    name: name('online_migration_backfill_rows'),
    help: 'Rows the backfill has read, per source shard (per table:shard for a rebalance), from the control table',
    labelNames: ['migration', 'shard'],
    registers,
    async collect() {
      this.reset();
      const runners = coordinator.names.map((migration) => kit.onlineMigration(migration).status());
      if ((await kit.status()).rebalance) runners.push(kit.rebalance().status());
      for (const status of await Promise.all(runners)) {
        for (const unit of status.backfill) this.set({ migration: status.name, shard: unit.shard }, unit.rows);
      }
    },
  });
  new Gauge({
    name: name('rebalance_phase'),
    help: 'The rebalance phase this instance applies (1 for the current one; none before any rebalance)',
    labelNames: ['phase', 'switching', 'finished'],
    registers,
    async collect() {
      this.reset();
      const move = (await kit.status()).rebalance;
      if (move) this.set({ phase: move.phase, switching: String(move.switching), finished: String(move.cleaned) }, 1);
    },
  });
  new Gauge({
    name: name('topology_version'),
    help: 'Version of the topology record (rebalance) this instance applies; 0 before any',
    registers,
    collect() {
      this.set(coordinator.topologyVersion ?? 0);
    },
  });
  new Gauge({
    name: name('degradation_level'),
    help: 'The degradation level in force (0: none), labelled by who set it: the health signal or an override',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      const { level, source } = kit.degradation;
      this.set({ source }, level);
    },
  });
  const stat = (suffix: string, help: string, read: () => number) =>
    new Counter({
      name: name(suffix),
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  stat('shadow_reads_compared_total', 'Rows compared by shadow reads on this instance', () => coordinator.stats.shadowCompared);
  stat('shadow_read_mismatches_total', 'Shadow-read mismatches found by this instance', () => coordinator.stats.shadowMismatches);
  stat('dual_write_sync_failures_total', 'Dual-write syncs after a commit that failed (their keys wait in the sync outbox for a drain)', () => coordinator.stats.syncFailures);
  stat('cache_hits_total', 'Reads the cache answered from this process (L1)', () => kit.cacheStats.hits);
  stat('cache_shared_hits_total', 'Misses of this process the shared level (Redis) answered', () => kit.cacheStats.sharedHits);
  stat('cache_misses_total', 'Reads this process did not find in its own cache', () => kit.cacheStats.misses);
  stat('cache_coalesced_total', 'Reads answered by another read of the same entry in flight', () => kit.cacheStats.coalesced);
  stat('cache_stale_served_total', 'Expired entries served to reads that failed (stale-if-error)', () => kit.cacheStats.staleServed);
  stat('cache_refused_fills_total', 'Fills not stored because a write moved what they read meanwhile', () => kit.cacheStats.refusedFills);
  stat('cache_lock_waits_total', "Misses that waited for another instance's fill", () => kit.cacheStats.lockWaits);
  new Gauge({
    name: name('cache_entries'),
    help: 'Entries in this process (L1), and their estimated bytes',
    labelNames: ['measure'],
    registers,
    collect() {
      const { entries, bytes } = kit.cacheStats;
      this.set({ measure: 'entries' }, entries);
      this.set({ measure: 'bytes' }, bytes);
    },
  });

  const onQuery = (event: QueryEvent) => {
    const labels = { shard: event.shard, node: event.node, role: event.role };
    queries.inc({ ...labels, intent: event.intent, outcome: event.error ? 'error' : 'ok' });
    latency.observe(labels, event.durationMs / 1000);
    if (event.error) errors.inc({ shard: event.shard, node: event.node, code: event.error });
  };
  const onStatement = (event: StatementEvent) => {
    const labels = { shard: event.shard, node: event.node, role: event.role, purpose: event.purpose };
    statements.inc({ ...labels, outcome: event.error ?? 'ok' });
    statementLatency.observe(labels, event.durationMs / 1000);
  };
  const onScatter = (event: ScatterEvent) => {
    fanOut.observe({ table: event.table }, event.shards);
    if (event.missing > 0) partial.inc({ table: event.table });
  };
  const onFailover = (event: FailoverEvent) => {
    failovers.inc({ shard: event.shard, stage: event.stage, cause: event.cause });
    if (event.heldMs !== undefined) held.observe({ shard: event.shard, stage: event.stage }, event.heldMs / 1000);
  };
  kit.on('query', onQuery);
  kit.on('statement', onStatement);
  kit.on('scatter', onScatter);
  kit.on('failover', onFailover);
  const names = registry
    .getMetricsAsArray()
    .map((metric) => metric.name)
    .filter((metric) => !before.has(metric));
  return {
    registry,
    detach() {
      kit.off('query', onQuery);
      kit.off('statement', onStatement);
      kit.off('scatter', onScatter);
      kit.off('failover', onFailover);
      for (const metric of names) registry.removeSingleMetric(metric);
    },
  };
}
