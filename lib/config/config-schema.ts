/**
 * The zod schema for ShardKitConfig: types, required fields and unknown keys (a typo such as
 * `shardkey` is an error, not a silently ignored option). Rules that relate several fields
 * (duplicate names, the global shard, one SQL family) live in resolve-config.ts.
 */
import { z } from 'zod';
import type { OnlineMigration } from './online-migration.js';
import { KEY_TYPES } from '../hashing/key-canonical.js';
import { DIALECTS } from './config-types.js';

/** Node's timers hold at most 2^31-1 ms; a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const nodeSchema = z.strictObject({
  name: z.string().min(1).optional(),
  dialect: z.enum(DIALECTS, {
    error: (issue) =>
      issue.input === undefined
        ? 'is required: one of postgres, mysql, pglite'
        : `unknown dialect ${JSON.stringify(String(issue.input))}; use one of ${DIALECTS.join(', ')}`,
  }),
  connection: z.union([z.string().min(1), z.record(z.string(), z.unknown())], {
    error: 'must be a connection string or a connection object',
  }),
  pool: z
    .strictObject({
      min: z.number().int().min(0).optional(),
      max: z.number().int().min(1).max(1000).optional(),
    })
    .refine((pool) => pool.min === undefined || pool.max === undefined || pool.min <= pool.max, {
      error: 'min must not be greater than max',
    })
    .optional(),
});

const shardSchema = z.strictObject({
  name: z.string({ error: 'is required' }),
  weight: z.number({ error: 'must be a number' }).optional(),
  standby: z.boolean({ error: 'must be true or false' }).optional(),
  primary: nodeSchema.optional(),
  replicas: z.array(nodeSchema).optional(),
  failoverCandidates: z.array(z.string().min(1), { error: 'must be a list of replica names' }).optional(),
});

const milliseconds = z.number({ error: 'must be a number of milliseconds' }).int().min(0).max(MAX_TIMER_MS, { error: `must be at most ${MAX_TIMER_MS} ms (about 24.8 days)` });
const positiveMilliseconds = milliseconds.min(1);

const tableSchema = z.strictObject({
  shardKey: z.string({ error: 'is required: the column that decides which shard a row lives on' }).min(1, {
    error: 'must name a column',
  }),
  keyType: z.enum(KEY_TYPES, { error: `must be one of ${KEY_TYPES.join(', ')}` }).optional(),
  slotColumn: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'must be a plain SQL identifier' }).optional(),
  cache: z
    .strictObject({
      ttlMs: positiveMilliseconds,
      jitter: z.number({ error: 'must be a number from 0 to 1' }).min(0).max(1).optional(),
      staleIfErrorMs: milliseconds.optional(),
      staleWhileRevalidateMs: milliseconds.optional(),
    })
    .optional(),
});


const readsSchema = z.strictObject({
  default: z.enum(['primary', 'replica']).optional(),
  maxLagMs: milliseconds.optional(),
  fallback: z.enum(['primary', 'error', 'wait']).optional(),
  waitMs: milliseconds.optional(),
});

const lagMonitorSchema = z.strictObject({
  intervalMs: positiveMilliseconds.optional(),
  idleProbeMs: positiveMilliseconds.optional(),
  timeoutMs: positiveMilliseconds.optional(),
  heartbeatTable: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'must be a plain SQL identifier' }).optional(),
});

const breakerSchema = z.strictObject({
  errorThresholdPercentage: z.number().min(1).max(100).optional(),
  volumeThreshold: z.number().int().min(1).max(1_000_000).optional(),
  resetTimeoutMs: positiveMilliseconds.optional(),
  rollingWindowMs: positiveMilliseconds.optional(),
});

const loadSheddingSchema = z.strictObject({
  maxInFlight: z.number().int().min(1).max(1000).optional(),
  maxQueued: z.number().int().min(0).max(1_000_000).optional(),
  adaptive: z
    .union([
      z.boolean(),
      z.strictObject({
        minInFlight: z.number().int().min(1).max(1000).optional(),
        windowMs: z.number().int().min(10).max(600_000).optional(),
        tolerance: z.number().min(1).max(100).optional(),
      }),
    ])
    .optional(),
});

const scatterSchema = z.strictObject({
  concurrency: z.number().int().min(1).max(1024).optional(),
  maxShardRows: z.number().int().min(1).max(100_000_000).optional(),
  maxInlineValues: z.number().int().min(1).max(1_000_000).optional(),
  maxJoinRows: z.number().int().min(1).max(100_000_000).optional(),
});

const degradationEffectsSchema = z.strictObject({
  shedBackground: z.boolean({ error: 'must be true or false' }).optional(),
  pauseBackfill: z.boolean({ error: 'must be true or false' }).optional(),
  replicaMaxLagMs: milliseconds.optional(),
  serveStaleMs: milliseconds.max(24 * 3600_000, { error: 'must be at most 86400000 ms (a day)' }).optional(),
  scatter: z.enum(['all', 'critical-only'], { error: "must be 'all' or 'critical-only'" }).optional(),
});

const degradationSchema = z.strictObject({
  enabled: z.boolean({ error: 'must be true or false' }).optional(),
  windowMs: z.number().int().min(100).max(3_600_000).optional(),
  evaluateEveryMs: z.number().int().min(10).max(600_000).optional(),
  minSamples: z.number().int().min(1).max(1_000_000).optional(),
  thresholds: z
    .array(
      z.strictObject({
        p99Ms: z.number({ error: 'is required: a latency in ms' }).positive(),
        errorRate: z.number({ error: 'is required: a share of calls from 0 to 1' }).min(0).max(1),
      }),
    )
    .min(1, { error: 'needs at least one level' })
    .max(9, { error: 'allows at most 9 levels' })
    .optional(),
  recoverBelow: z.number().gt(0, { error: 'must be above 0' }).max(1).optional(),
  minHoldMs: milliseconds.optional(),
  effects: z.record(z.string().regex(/^[1-9]$/, { error: 'levels are 1 to 9' }), degradationEffectsSchema).optional(),
});

const timeoutsSchema = z.strictObject({
  queryMs: positiveMilliseconds.optional(),
  connectMs: positiveMilliseconds.optional(),
  acquireMs: positiveMilliseconds.optional(),
  closeMs: milliseconds.optional(),
  schemaMigrationMs: positiveMilliseconds.optional(),
});

const onlineMigrationSchema = z.custom<OnlineMigration>((value) => typeof value === 'object' && value !== null, {
  error: 'must be an online migration (defineOnlineMigration({...}))',
});

const extensions = z.array(z.string().regex(/^\.[A-Za-z0-9]+$/, { error: "must be extensions such as '.ts'" })).min(1).optional();

const migrationsSchema = z.strictObject({
  directory: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  tableName: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'must be a plain SQL identifier' }).optional(),
  schemaName: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'must be a plain SQL identifier' }).optional(),
  loadExtensions: extensions,
  extension: z.enum(['ts', 'js']).optional(),
  disableTransactions: z.boolean().optional(),
  controlShard: z.string().optional(),
  pollIntervalMs: positiveMilliseconds.optional(),
  leaseMs: positiveMilliseconds.optional(),
});

export const configSchema = z.strictObject({
  shards: z.array(shardSchema, { error: 'is required: a list of shards' }).min(1, { error: 'needs at least one shard' }),
  tables: z.record(z.string().min(1), tableSchema, { error: 'is required: sharded tables and their shard keys' }),
  globalTables: z.array(z.string().min(1)).optional(),
  globalShard: z.string().optional(),
  reads: readsSchema.optional(),
  lagMonitor: lagMonitorSchema.optional(),
  breaker: breakerSchema.optional(),
  scatter: scatterSchema.optional(),
  timeouts: timeoutsSchema.optional(),
  loadShedding: loadSheddingSchema.optional(),
  onlineMigrations: z.array(onlineMigrationSchema).optional(),
  migrations: migrationsSchema.optional(),
  seeds: z.strictObject({ directory: z.string().min(1).optional(), loadExtensions: extensions }).optional(),
  transactions: z.strictObject({ recoveryIntervalMs: milliseconds.optional(), inDoubtGraceMs: milliseconds.optional() }).optional(),
  failover: z
    .strictObject({ holdMs: milliseconds.optional(), probeIntervalMs: positiveMilliseconds.optional(), pollIntervalMs: positiveMilliseconds.optional() })
    .optional(),
  cache: z
    .strictObject({
      maxEntries: z.number().int().min(1).max(100_000_000).optional(),
      maxBytes: z.number().int().min(1024).optional(),
      local: z.boolean({ error: 'must be true or false' }).optional(),
      redis: z
        .strictObject({
          url: z.string({ error: 'is required: redis://host:port' }).regex(/^rediss?:\/\//, { error: 'must be a redis:// or rediss:// URL' }),
          keyPrefix: z.string().max(100).optional(),
          timeoutMs: positiveMilliseconds.optional(),
          lockMs: positiveMilliseconds.optional(),
          lockWaitMs: milliseconds.optional(),
        })
        .optional(),
    })
    .optional(),
  degradation: degradationSchema.optional(),
});

export type ParsedConfig = z.output<typeof configSchema>;
