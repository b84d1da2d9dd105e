/** shardkit's public API. */
export type {
  BreakerOptions,
  DegradationEffects,
  DegradationOptions,
  DegradationThreshold,
  Dialect,
  LagMonitorOptions,
  ReadFrom,
  ReadOptions,
  ReplicaFallback,
  NodeConfig,
  PgliteConnection,
  PoolOptions,
  ResolvedConfig,
  ResolvedNode,
  ResolvedShard,
  ShardConfig,
  ShardedTableConfig,
  ShardKitConfig,
  TransactionsOptions,
} from './config/config-types.js';
export { defineConfig } from './config/config-types.js';
/** knex's types, for migrations, seeds and `kit.forShard()` code: `import type { Knex } from 'shardkit'`. */
export type { Knex } from 'knex';
export { loadConfig } from './config/load-config.js';
export { resolveConfig } from './config/resolve-config.js';
export * from './errors.js';
export { HashRing, type RingShard } from './hashing/hash-ring.js';
export type { IdGenerator } from './ids/id-generator.js';
export { decomposeId, type IdFormat, layoutOf } from './ids/id-layout.js';
export type { IdOptions } from './kit/global-ids.js';
export type { IsolationLevel, RoutedTransaction, TransactionOptions } from './kit/routed-transaction.js';
export type { AtomicTransaction } from './kit/atomic-transaction.js';
export type { RecoverOptions } from './kit/in-doubt-recovery.js';
export type { TwoPhaseEvent, TwoPhaseStep } from './transactions/atomic-commit.js';
export type { ForeignPrepared, PreparedParticipant, RecoveryReport } from './transactions/recover-prepared.js';
export { normalizeShardKey, type ShardKey } from './hashing/shard-key.js';
export type { MigrationStatus } from './migrations/online/migration-runner.js';
export { OnlineMigrationRunner } from './migrations/online/migration-runner.js';
export { defineOnlineMigration, type OnlineMigration } from './config/online-migration.js';
export { PHASES, type Phase } from './migrations/online/phases.js';
export { SchemaMigrator, type SeedParams, type ShardMigrationStatus, type ShardVersion } from './migrations/schema-migrator.js';
export { drive, type DriveOptions } from './migrations/online/drive.js';
export type { QueryPlan, Route } from './planner/query-plan.js';
export { instrumentKit, type KitMetrics, type MetricsOptions } from './observability/metrics.js';
export type { BreakerEvent, DegradationEvent, DegradationSource, PhaseEvent, ReplicaEvent, ScatterEvent, ThrottleEvent } from './observability/state-events.js';
export { logStateChanges, type StateLogger } from './observability/state-log.js';
export { planRebalance, type RebalancePlan } from './rebalance/rebalance-plan.js';
export type { RowFlow, TableMoves } from './rebalance/row-moves.js';
export { idealMovedFraction, planSlotMoves, type SlotFlow, type SlotMovePlan } from './rebalance/slot-moves.js';
export { addSlotColumn, dropSlotColumn, DEFAULT_SLOT_COLUMN, type SlotColumnOptions } from './dialect/slot-column.js';
export { applyTopologyChange, type TopologyChange } from './rebalance/topology-change.js';
export { type CleanupProgress, RebalanceRunner, type RebalanceStatus, type RebalanceStartOptions } from './rebalance/rebalance-runner.js';
export type { KeysetKey, Page, PageOptions } from './engine/keyset-pagination.js';
export type { QueryEvent } from './engine/routed-shard-access.js';
export type { CacheOutcome, CacheStats } from './cache/read-cache.js';
export type { CacheEvent } from './kit/kit-events.js';
export { ConsistencyToken } from './replicas/consistency-token.js';
export type { ReadSession } from './replicas/read-session.js';
export type { BreakerState } from './resilience/node-breaker.js';
export { overloadResponse, type OverloadResponse, retryAfterOf } from './resilience/retry-after.js';
export { createShardKit, type DegradationOverride, type DegradationStatus, type Gathered, type KitStatus, type NodeStatus, type SetDegradationOptions, ShardKit, type ShardStatus, type TableOptions } from './shard-kit.js';
