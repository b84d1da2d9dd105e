/**
 * Validates a configuration and resolves it: the schema first (types, required fields,
 * unknown keys), then the rules that relate fields. Every problem found is reported at once,
 * each with the path of the field to fix, in one ConfigError.
 */
import { ConfigError, type ConfigIssue } from '../errors.js';
import { ringShardIssues, SHARD_NAME_PATTERN } from '../hashing/hash-ring.js';
import { configSchema, type ParsedConfig } from './config-schema.js';
import type { Dialect, LoadSheddingOptions, ResolvedConfig, ResolvedLoadShedding, ResolvedNode, ResolvedShard, SqlFamily } from './config-types.js';
import { onlineMigrationIssues } from './online-migration-issues.js';
import { degradationIssues, resolveDegradation } from './degradation-config.js';
import { sealConnection, sealRedisUrl } from './connection-vault.js';
import { addressOf, describeConnection, registerConnectionSecrets } from './node-description.js';

type ParsedShard = ParsedConfig['shards'][number];
type ParsedNode = NonNullable<ParsedShard['primary']>;

const FAMILY: Record<Dialect, SqlFamily> = { postgres: 'postgres', pglite: 'postgres', mysql: 'mysql' };
/** What knex loads as migrations and seeds, with ES module and TypeScript module variants. */
const LOAD_EXTENSIONS = ['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts'];

export function resolveConfig(input: unknown): ResolvedConfig {
  registerSecretsEarly(input);
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })));
  }
  const config = parsed.data;
  const tables = new Map(Object.entries(config.tables));
  const globalTables = new Set(config.globalTables ?? []);
  const issues: ConfigIssue[] = [
    ...ringShardIssues(config.shards.map((shard) => ({ name: shard.name, weight: shard.weight ?? 1 }))),
    ...primaryIssues(config.shards),
    ...nodeIssues(config.shards),
    ...tableIssues(config),
    ...onlineMigrationIssues(config.onlineMigrations ?? [], { tables, globalTables }),
    ...degradationIssues(config.degradation),
  ];
  const controlShard = config.migrations?.controlShard;
  if (controlShard !== undefined && !config.shards.some((shard) => shard.name === controlShard)) {
    issues.push({ path: 'migrations.controlShard', message: `"${controlShard}" is not one of the configured shards` });
  }
  const owning = config.shards.filter((shard) => shard.standby !== true);
  if (config.shards.length > 0 && owning.length === 0) issues.push({ path: 'shards', message: 'at least one shard must own keys (not be standby)' });
  for (const [path, name] of [['globalShard', config.globalShard], ['migrations.controlShard', controlShard]] as const) {
    if (config.shards.some((shard) => shard.name === name && shard.standby === true)) issues.push({ path, message: `"${name}" is a standby shard; name one that owns keys` });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const shards = config.shards.map(resolveShard);
  return {
    shards,
    tables,
    globalTables,
    globalShard: config.globalShard ?? owning[0]!.name,
    family: FAMILY[shards[0]!.primary.dialect],
    reads: { default: 'primary', maxLagMs: 1000, fallback: 'primary', waitMs: 1000, ...config.reads },
    lagMonitor: { intervalMs: 75, idleProbeMs: 1000, timeoutMs: 1000, heartbeatTable: 'shardkit_heartbeat', ...config.lagMonitor },
    breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeoutMs: 2000, rollingWindowMs: 10_000, ...config.breaker },
    scatter: {
      concurrency: config.scatter?.concurrency ?? 16,
      maxShardRows: config.scatter?.maxShardRows ?? 200_000,
      maxInlineValues: config.scatter?.maxInlineValues ?? 10_000,
      maxJoinRows: config.scatter?.maxJoinRows ?? 100_000,
    },
    timeouts: { queryMs: 30_000, connectMs: 5000, acquireMs: 10_000, closeMs: 3000, schemaMigrationMs: 600_000, ...config.timeouts },
    loadShedding: resolveLoadShedding(config.loadShedding),
    cache: resolveCache(config.cache),
    degradation: resolveDegradation(config.degradation),
    onlineMigrations: config.onlineMigrations ?? [],
    migrations: {
      directory: config.migrations?.directory ?? 'migrations',
      tableName: config.migrations?.tableName ?? 'knex_migrations',
      ...(config.migrations?.schemaName ? { schemaName: config.migrations.schemaName } : {}),
      loadExtensions: config.migrations?.loadExtensions ?? LOAD_EXTENSIONS,
      extension: config.migrations?.extension ?? 'ts',
      disableTransactions: config.migrations?.disableTransactions ?? false,
      controlShard: config.migrations?.controlShard ?? config.globalShard ?? owning[0]!.name,
      pollIntervalMs: config.migrations?.pollIntervalMs ?? 1000,
      leaseMs: config.migrations?.leaseMs ?? 10_000,
    },
    seeds: { directory: config.seeds?.directory ?? 'seeds', loadExtensions: config.seeds?.loadExtensions ?? LOAD_EXTENSIONS },
    transactions: { recoveryIntervalMs: 30_000, inDoubtGraceMs: 30_000, ...config.transactions },
    failover: { holdMs: 10_000, probeIntervalMs: 200, pollIntervalMs: 1000, ...config.failover },
  };
}

/** Register passwords before validation, so that even an error about this config is redacted. */
function registerSecretsEarly(input: unknown): void {
  // A connection string (redis://user:password@host) is one, so that an error quoting it is redacted too.
  const redisUrl = (input as { cache?: { redis?: { url?: unknown } } } | null)?.cache?.redis?.url;
  if (typeof redisUrl === 'string') registerConnectionSecrets(redisUrl);
  const shards = (input as { shards?: unknown } | null)?.shards;
  if (!Array.isArray(shards)) return;
  for (const shard of shards) {
    const nodes = [shard?.primary, ...(Array.isArray(shard?.replicas) ? shard.replicas : [])];
    for (const node of nodes) {
      const connection = node?.connection;
      if (typeof connection === 'string' || (typeof connection === 'object' && connection !== null)) {
        registerConnectionSecrets(connection);
      }
    }
  }
}

function primaryIssues(shards: readonly ParsedShard[]): ConfigIssue[] {
  return shards.flatMap((shard, index) =>
    shard.primary ? [] : [{ path: `shards[${index}].primary`, message: `shard "${shard.name}" has no primary node` }],
  );
}

function nodeIssues(shards: readonly ParsedShard[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seenNames = new Map<string, string>();
  const families = new Set<SqlFamily>();
  shards.forEach((shard, shardIndex) => {
    nodesOf(shard).forEach(({ node, path, defaultName }) => {
      const name = node.name ?? defaultName;
      const nodePath = `shards[${shardIndex}].${path}`;
      if (!SHARD_NAME_PATTERN.test(name)) {
        issues.push({ path: `${nodePath}.name`, message: `"${name}" must match ${SHARD_NAME_PATTERN}` });
      }
      const firstUse = seenNames.get(name);
      if (firstUse) issues.push({ path: `${nodePath}.name`, message: `duplicate node name "${name}" (also ${firstUse})` });
      seenNames.set(name, nodePath);
      families.add(FAMILY[node.dialect]);
      if (node.dialect === 'pglite' && typeof node.connection === 'string') {
        issues.push({ path: `${nodePath}.connection`, message: 'a pglite connection is { dataDir?: string }' });
      }
    });
    if (shard.primary?.dialect === 'pglite' && (shard.replicas?.length ?? 0) > 0) {
      issues.push({ path: `shards[${shardIndex}].replicas`, message: 'pglite has no replication; remove the replicas' });
    }
    issues.push(...candidateIssues(shard, shardIndex));
  });
  if (families.size > 1) {
    issues.push({
      path: 'shards',
      message: 'all nodes must speak one SQL family: postgres and pglite, or mysql, not both',
    });
  }
  return issues;
}

/** A failover candidate must be one of the shard's own replicas, named once. */
function candidateIssues(shard: ParsedShard, shardIndex: number): ConfigIssue[] {
  const replicaNames = nodesOf(shard)
    .slice(shard.primary ? 1 : 0)
    .map(({ node, defaultName }) => node.name ?? defaultName);
  return (shard.failoverCandidates ?? []).flatMap((name, index) => {
    const path = `shards[${shardIndex}].failoverCandidates[${index}]`;
    if (!replicaNames.includes(name)) {
      return [{ path, message: `"${name}" is not a replica of shard ${shard.name}${replicaNames.length ? ` (its replicas: ${replicaNames.join(', ')})` : ' (it has none)'}` }];
    }
    return shard.failoverCandidates!.indexOf(name) === index ? [] : [{ path, message: `duplicate candidate "${name}"` }];
  });
}

function nodesOf(shard: ParsedShard): { node: ParsedNode; path: string; defaultName: string }[] {
  const primary = shard.primary ? [{ node: shard.primary, path: 'primary', defaultName: `${shard.name}-primary` }] : [];
  const replicas = (shard.replicas ?? []).map((node, index) => ({
    node,
    path: `replicas[${index}]`,
    defaultName: `${shard.name}-replica${index + 1}`,
  }));
  return [...primary, ...replicas];
}

function tableIssues(config: ParsedConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  (config.globalTables ?? []).forEach((table, index) => {
    if (Object.hasOwn(config.tables, table)) {
      issues.push({ path: `globalTables[${index}]`, message: `"${table}" is also a sharded table in \`tables\`` });
    }
    if (seen.has(table)) issues.push({ path: `globalTables[${index}]`, message: `duplicate global table "${table}"` });
    seen.add(table);
  });
  for (const [table, { shardKey, slotColumn }] of Object.entries(config.tables)) {
    if (slotColumn === shardKey) issues.push({ path: `tables.${table}.slotColumn`, message: 'must be a column of its own, not the shard key' });
  }
  if (config.globalShard !== undefined && !config.shards.some((shard) => shard.name === config.globalShard)) {
    issues.push({ path: 'globalShard', message: `"${config.globalShard}" is not one of the configured shards` });
  }
  return issues;
}

function resolveShard(shard: ParsedShard): ResolvedShard {
  const [primary, ...replicas] = nodesOf(shard).map(({ node, defaultName }, index) =>
    resolveNode(node, shard.name, index === 0 ? 'primary' : 'replica', defaultName),
  );
  return { name: shard.name, weight: shard.weight ?? 1, standby: shard.standby ?? false, primary: primary!, replicas, failoverCandidates: shard.failoverCandidates ?? [] };
}

function resolveNode(node: ParsedNode, shard: string, role: ResolvedNode['role'], defaultName: string): ResolvedNode {
  const resolved: ResolvedNode = {
    name: node.name ?? defaultName,
    shard,
    role,
    dialect: node.dialect,
    pool: node.pool,
    address: addressOf(node.dialect, node.connection) ?? {},
    description: describeConnection(node.dialect, node.connection),
  };
  return sealConnection(resolved, node.connection);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(config)';
  return path
    .map((part, index) => {
      if (typeof part === 'number') return `[${part}]`;
      const text = String(part);
      return index === 0 ? text : `.${text}`;
    })
    .join('');
}

function resolveCache(cache: ParsedConfig['cache']): ResolvedConfig['cache'] {
  const resolved: ResolvedConfig['cache'] = { maxEntries: cache?.maxEntries ?? 10_000, maxBytes: cache?.maxBytes ?? 64 * 1024 * 1024, local: cache?.local ?? true };
  const redis = cache?.redis;
  if (!redis) return resolved;
  const url = new URL(redis.url);
  const options = {
    address: `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`,
    keyPrefix: redis.keyPrefix ?? 'shardkit:',
    timeoutMs: redis.timeoutMs ?? 50,
    lockMs: redis.lockMs ?? 2000,
    lockWaitMs: redis.lockWaitMs ?? 250,
  };
  return { ...resolved, redis: sealRedisUrl(options, redis.url) };
}

function resolveLoadShedding(options: LoadSheddingOptions = {}): ResolvedLoadShedding {
  const { adaptive } = options;
  return {
    maxInFlight: options.maxInFlight ?? 10,
    maxQueued: options.maxQueued ?? 100,
    adaptive: adaptive ? { minInFlight: 1, windowMs: 1000, tolerance: 2, ...(adaptive === true ? {} : adaptive) } : false,
  };
}
