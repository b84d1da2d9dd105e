/** shardkit's public API. */
export type {
  Dialect,
  NodeConfig,
  PgliteConnection,
  PoolOptions,
  ResolvedConfig,
  ResolvedNode,
  ResolvedShard,
  ShardConfig,
  ShardedTableConfig,
  ShardKitConfig,
} from './config/config-types.js';
export { defineConfig } from './config/config-types.js';
export { loadConfig } from './config/load-config.js';
export { resolveConfig } from './config/resolve-config.js';
export * from './errors.js';
export { HashRing, type RingShard } from './hashing/hash-ring.js';
export { normalizeShardKey, type ShardKey } from './hashing/shard-key.js';
export { SchemaMigrator } from './migrations/schema-migrator.js';
export type { QueryPlan, Route } from './planner/query-plan.js';
export { createShardKit, ShardKit } from './shard-kit.js';
