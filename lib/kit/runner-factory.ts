/**
 * Makes the runners that drive online migrations and rebalances through their phases. Their
 * traffic is background work (see access/call-scope.ts): it queues behind and is shed before
 * the application's queries, and the backfill pauses on the load it causes itself.
 */
import type { ResolvedConfig } from '../config/config-types.js';
import { UnknownMigrationError } from '../errors.js';
import type { MigrationCoordinator } from '../migrations/online/migration-coordinator.js';
import { OnlineMigrationRunner, type RunnerContext } from '../migrations/online/migration-runner.js';
import type { MigrationTables } from '../migrations/online/migration-tables.js';
import type { ThrottleEvent } from '../observability/state-events.js';
import type { RebalanceFollower } from '../rebalance/rebalance-follower.js';
import { REBALANCE_NAME, REBALANCE_TITLE, rebalanceOf } from '../rebalance/rebalance-record.js';
import { RebalanceRunner } from '../rebalance/rebalance-runner.js';
import type { Topology } from '../topology/topology.js';

export interface RunnerSources {
  config: ResolvedConfig;
  topology: Topology;
  coordinator: MigrationCoordinator;
  follower: RebalanceFollower;
  throttleReason: (maxLagMs: number) => string | undefined;
  onThrottle: (event: ThrottleEvent) => void;
}

export function onlineMigrationRunner(sources: RunnerSources, name: string): OnlineMigrationRunner {
  const tables = sources.coordinator.tablesOf(name);
  if (!tables) throw new UnknownMigrationError(name, sources.coordinator.names);
  return phaseRunner(sources, name, `online migration "${name}"`, () => [tables], {
    startGate: async () => {
      const move = await sources.coordinator.store.peek(REBALANCE_NAME);
      const rebalance = rebalanceOf(move);
      return rebalance && !rebalance.cleaned ? ['a rebalance is in progress: finish it (cleanup) or abort it first'] : [];
    },
  });
}

export function rebalanceRunner(sources: RunnerSources): RebalanceRunner {
  const { coordinator } = sources;
  const phases = phaseRunner(sources, REBALANCE_NAME, REBALANCE_TITLE, () => sources.follower.movingTables(), { switchesTopology: true });
  return new RebalanceRunner({
    databases: sources.topology,
    config: sources.config,
    store: coordinator.store,
    coordinator,
    phases,
    movingTables: () => sources.follower.movingTables(),
    activeMigrations: async () => {
      const records = await Promise.all(coordinator.names.map((name) => coordinator.store.peek(name)));
      return records.filter((record) => record && record.phase !== 'pending' && record.phase !== 'cleanup').map((record) => record!.name);
    },
  });
}

function phaseRunner(
  sources: RunnerSources,
  name: string,
  title: string,
  parts: () => MigrationTables[],
  extra: Pick<RunnerContext, 'switchesTopology' | 'startGate'>,
): OnlineMigrationRunner {
  const control = sources.topology.shard(sources.config.migrations.controlShard).primary;
  return new OnlineMigrationRunner({
    name,
    title,
    databases: sources.topology,
    store: sources.coordinator.store,
    coordinator: sources.coordinator,
    parts,
    lockDb: control.knex,
    locks: control.dialect.locks,
    throttleReason: sources.throttleReason,
    onThrottle: sources.onThrottle,
    ...extra,
  });
}
