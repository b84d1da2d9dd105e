/**
 * The error catalog. Every failure shardkit raises is a ShardKitError subclass with a stable
 * `code` (safe to switch on across versions), the shard and node involved where there is one,
 * whether retrying the same call can succeed, and the driver error kept as `cause`.
 *
 * Messages pass through the secret redactor, so a password that reached a message by accident
 * (a connection string in a driver error, say) is replaced before anyone can log it, and are cut
 * to MAX_MESSAGE_LENGTH characters, so that a driver error quoting a huge statement stays readable.
 */
import { redactSecrets } from './security/secret-redactor.js';

export const ERROR_CODES = [
  'CONFIG_INVALID',
  'CONFIG_LOAD_FAILED',
  'INVALID_SHARD_KEY',
  'SHARD_KEY_REQUIRED',
  'SHARD_KEY_UPDATE',
  'UNKNOWN_TABLE',
  'UNKNOWN_SHARD',
  'UNSUPPORTED_QUERY',
  'MERGE_LIMIT',
  'ID_UNAVAILABLE',
  'CROSS_SHARD_TRANSACTION',
  'TWO_PHASE_UNAVAILABLE',
  'TRANSACTION_ABORTED',
  'TRANSACTION_IN_DOUBT',
  'QUERY_FAILED',
  'SCATTER_FAILED',
  'DRIVER_MISSING',
  'KIT_CLOSED',
  'SCHEMA_MIGRATION_FAILED',
  'SHARD_UNAVAILABLE',
  'REPLICA_LAG',
  'INVALID_TOKEN',
  'QUERY_CANCELLED',
  'CACHE_UNAVAILABLE',
  'SHARD_OVERLOADED',
  'DEGRADED',
  'INVALID_CURSOR',
  'MIGRATION_CONFLICT',
  'MIGRATION_LOCKED',
  'MIGRATION_GATE',
  'MIGRATION_PHASE',
  'UNKNOWN_MIGRATION',
  'INVALID_TOPOLOGY_CHANGE',
  'TOPOLOGY_SWITCHING',
  'QUERY_TIMEOUT',
  'CONNECTION_FAILED',
  'FAILOVER_FAILED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ShardKitErrorOptions {
  cause?: unknown;
  shard?: string;
  node?: string;
  retryable?: boolean;
}

/** The longest message an error carries (the rest is cut with an ellipsis). */
export const MAX_MESSAGE_LENGTH = 2000;

/** `text` cut to at most `max` characters, marking the cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

export abstract class ShardKitError extends Error {
  abstract readonly code: ErrorCode;
  readonly shard: string | undefined;
  readonly node: string | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: ShardKitErrorOptions = {}) {
    super(truncate(redactSecrets(message), MAX_MESSAGE_LENGTH), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.shard = options.shard;
    this.node = options.node;
    this.retryable = options.retryable ?? false;
  }
}

/** One problem found in a configuration, addressed by its path (`shards[1].weight`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

export class ConfigError extends ShardKitError {
  readonly code = 'CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const lines = issues.map((issue) => `  - ${issue.path}: ${issue.message}`);
    super(`invalid shardkit config:\n${lines.join('\n')}`);
    this.issues = issues;
  }
}

export class ConfigLoadError extends ShardKitError {
  readonly code = 'CONFIG_LOAD_FAILED';
  readonly path: string;

  constructor(path: string, reason: string, cause?: unknown) {
    super(`cannot load shardkit config from ${path}: ${reason}`, { cause });
    this.path = path;
  }
}

export class InvalidShardKeyError extends ShardKitError {
  readonly code = 'INVALID_SHARD_KEY';
  /** What the rejected key was: 'null', 'undefined', 'NaN', 'float', 'object', 'array', ... */
  readonly keyType: string;

  constructor(keyType: string, detail: string) {
    super(`invalid shard key (${keyType}): ${detail}`);
    this.keyType = keyType;
  }
}

export class ShardKeyRequiredError extends ShardKitError {
  readonly code = 'SHARD_KEY_REQUIRED';
  readonly table: string;

  constructor(table: string, message: string) {
    super(message);
    this.table = table;
  }
}

export class ShardKeyUpdateError extends ShardKitError {
  readonly code = 'SHARD_KEY_UPDATE';
  readonly table: string;

  constructor(table: string, column: string, detail = 'which would move the row to another shard') {
    super(`update of "${table}" changes its shard key "${column}": ${detail}; delete the row and insert it with the new key instead`);
    this.table = table;
  }
}

export class UnknownTableError extends ShardKitError {
  readonly code = 'UNKNOWN_TABLE';
  readonly table: string;

  constructor(table: string, known: readonly string[]) {
    super(
      `table "${table}" is not in the shardkit config; add it to \`tables\` (sharded, with its ` +
        `shardKey) or to \`globalTables\`. Known tables: ${known.join(', ') || '(none)'}`,
    );
    this.table = table;
  }
}

export class UnknownShardError extends ShardKitError {
  readonly code = 'UNKNOWN_SHARD';

  constructor(shard: string, known: readonly string[]) {
    super(`shard "${shard}" does not exist; known shards: ${known.join(', ')}`, { shard });
  }
}

export class UnsupportedQueryError extends ShardKitError {
  readonly code = 'UNSUPPORTED_QUERY';
  /** The construct that cannot run correctly across shards, e.g. 'orderBy', 'count', 'join'. */
  readonly construct: string;

  constructor(construct: string, detail: string) {
    super(`unsupported cross-shard query (${construct}): ${detail}`);
    this.construct = construct;
  }
}

/**
 * A merge that holds every row it receives (DISTINCT, GROUP BY on a column that is not the
 * shard key, DISTINCT aggregates) got more rows from one shard than `scatter.maxShardRows`
 * allows, or a subquery to inline more values than `scatter.maxInlineValues`, or a lookup join
 * more rows than `scatter.maxJoinRows`: failing is better than exhausting the process's memory.
 */
export class MergeLimitError extends ShardKitError {
  readonly code = 'MERGE_LIMIT';
  /** The bound that was reached. */
  readonly maxShardRows: number;

  constructor(
    maxShardRows: number,
    detail = `a shard returned more than ${maxShardRows} rows to a merge that holds them all (scatter.maxShardRows)`,
  ) {
    super(`${detail}; narrow the query, group by the shard key (each shard then answers alone), or raise the bound`);
    this.maxShardRows = maxShardRows;
  }
}

/**
 * No global ID can be made right now without risking a duplicate: no worker id is leased, the
 * lease ends before its renewal was confirmed, or the clock went back further than allowed.
 * Retryable after `retryAfterMs` (except when the layout has run out of time).
 */
export class IdUnavailableError extends ShardKitError {
  readonly code = 'ID_UNAVAILABLE';
  readonly retryAfterMs: number;

  constructor(detail: string, retryAfterMs: number, retryable = true) {
    super(`cannot make a global id: ${detail}`, { retryable });
    this.retryAfterMs = retryAfterMs;
  }
}

/** A statement inside a routed transaction would touch another shard than the transaction's. */
export class CrossShardTransactionError extends ShardKitError {
  readonly code = 'CROSS_SHARD_TRANSACTION';
  /** The shard the transaction runs on. */
  readonly transactionShard: string;
  /** The other shards the statement would touch. */
  readonly otherShards: readonly string[];

  constructor(table: string, transactionShard: string, otherShards: readonly string[], why = `its rows live on ${otherShards.join(', ')}`) {
    super(`a statement on "${table}" cannot run in the transaction on shard ${transactionShard}: ${why}`, { shard: transactionShard });
    this.transactionShard = transactionShard;
    this.otherShards = otherShards;
  }
}

/** The driver's own code of an error: a QueryFailedError's `driverCode`, or a raw driver error's `code`. */
/** An atomic (two-phase) transaction on a shard whose database has no prepared transactions. */
export class TwoPhaseUnavailableError extends ShardKitError {
  readonly code = 'TWO_PHASE_UNAVAILABLE';

  constructor(shard: string, detail: string, cause?: unknown) {
    super(`shard ${shard} cannot take part in an atomic transaction: ${detail}`, { shard, cause });
  }
}

/** An atomic transaction that was rolled back on every shard it touched. */
export class TransactionAbortedError extends ShardKitError {
  readonly code = 'TRANSACTION_ABORTED';
  readonly gtrid: string;

  constructor(gtrid: string, why: string, options: { cause?: unknown; shard?: string; retryable?: boolean } = {}) {
    super(`atomic transaction ${gtrid} was rolled back on every shard: ${why}`, options);
    this.gtrid = gtrid;
  }
}

/**
 * An atomic transaction whose decision could not be recorded or read: its participants stay
 * prepared until recovery decides (commit if the decision was recorded, otherwise roll back).
 * Not retryable: running it again could apply it twice.
 */
export class TransactionInDoubtError extends ShardKitError {
  readonly code = 'TRANSACTION_IN_DOUBT';
  readonly gtrid: string;

  constructor(gtrid: string, cause: unknown) {
    super(`atomic transaction ${gtrid} is in doubt: its decision could not be recorded; recovery (shardkit tx recover) settles it`, { cause });
    this.gtrid = gtrid;
  }
}

export function driverCodeOf(error: unknown): string | undefined {
  const code = (error as { driverCode?: unknown } | null)?.driverCode ?? (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export class QueryFailedError extends ShardKitError {
  readonly code = 'QUERY_FAILED';
  /** The driver's own error code (PostgreSQL SQLSTATE such as '23505', MySQL 'ER_DUP_ENTRY'). */
  readonly driverCode: string | undefined;

  constructor(message: string, options: ShardKitErrorOptions & { driverCode?: string }) {
    super(message, options);
    this.driverCode = options.driverCode;
  }
}

export interface ShardFailure {
  shard: string;
  error: ShardKitError;
}

/**
 * A query that ran on several shards failed on some of them. For writes, `succeeded` lists the
 * shards that committed their part and `unknown` those whose commit was under way when it failed
 * (a timeout or a lost connection during COMMIT): shardkit has no cross-shard atomicity, so the
 * caller must retry idempotently or compensate. Shards in `failures` but not in `unknown` did not
 * commit. A multi-shard write is retryable only when no shard committed and every failure is.
 */
export class ScatterError extends ShardKitError {
  readonly code = 'SCATTER_FAILED';
  readonly failures: readonly ShardFailure[];
  readonly succeeded: readonly string[];
  readonly unknown: readonly string[];

  constructor(failures: readonly ShardFailure[], succeeded: readonly string[], options: { write?: boolean; unknown?: readonly string[] } = {}) {
    const unknown = options.unknown ?? [];
    const detail = failures.map((failure) => `${failure.shard}: ${truncate(failure.error.message, 300)}`).join('; ');
    const outcome = options.write
      ? `; committed on: ${succeeded.join(', ') || '(none)'}${unknown.length > 0 ? `; outcome unknown on: ${unknown.join(', ')}` : ''}`
      : `; answered: ${succeeded.join(', ') || '(none)'}`;
    const allRetryable = failures.every((failure) => failure.error.retryable);
    super(`query failed on ${failures.length} shard(s) [${detail}]${outcome}`, {
      retryable: allRetryable && (!options.write || (succeeded.length === 0 && unknown.length === 0)),
      cause: failures[0]?.error,
    });
    this.failures = failures;
    this.succeeded = succeeded;
    this.unknown = unknown;
  }
}

export class DriverMissingError extends ShardKitError {
  readonly code = 'DRIVER_MISSING';

  constructor(dialect: string, packages: readonly string[], cause: unknown) {
    super(`the ${dialect} dialect needs ${packages.join(' and ')}: run npm install ${packages.join(' ')}`, { cause });
  }
}

export class KitClosedError extends ShardKitError {
  readonly code = 'KIT_CLOSED';

  constructor() {
    super('this shardkit instance is closed; create a new one with createShardKit()');
  }
}

export interface ShardMigrationReport {
  shard: string;
  /** Migrations applied on this shard, oldest first, after the run. */
  applied: readonly string[];
  error?: ShardKitError;
}

export class SchemaMigrationError extends ShardKitError {
  readonly code = 'SCHEMA_MIGRATION_FAILED';
  readonly report: readonly ShardMigrationReport[];

  constructor(report: readonly ShardMigrationReport[]) {
    const failed = report.filter((entry) => entry.error);
    const detail = failed.map((entry) => `${entry.shard}: ${entry.error?.message}`).join('; ');
    super(`schema migration failed on ${failed.map((entry) => entry.shard).join(', ')} [${detail}]; run again to resume`, {
      cause: failed[0]?.error,
    });
    this.report = report;
  }
}

/** A node's circuit breaker is open: the call failed fast, without touching the network. */
export class ShardUnavailableError extends ShardKitError {
  readonly code = 'SHARD_UNAVAILABLE';
  /** When the node's breaker lets a call try it again. */
  readonly retryAfterMs: number;

  constructor(shard: string, node: string, retryAfterMs: number, lastFailure?: unknown) {
    const last = lastFailure instanceof Error ? ` (last: ${truncate(lastFailure.message, 300)})` : '';
    super(`node ${node} of shard ${shard} is marked down after repeated failures${last}; retry in about ${retryAfterMs} ms`, {
      shard,
      node,
      retryable: true,
      ...(lastFailure === undefined ? {} : { cause: lastFailure }),
    });
    this.retryAfterMs = retryAfterMs;
  }
}

/** What one replica looked like when a read could not use it. */
export interface ReplicaVerdict {
  node: string;
  /** Assumed lag in ms at the time of the read; undefined when unknown. */
  lagMs: number | undefined;
  reason: string;
}

/** A replica read with `fallback: 'error'` found no replica fresh enough. */
export class ReplicaLagError extends ShardKitError {
  readonly code = 'REPLICA_LAG';
  readonly replicas: readonly ReplicaVerdict[];

  constructor(shard: string, maxLagMs: number, replicas: readonly ReplicaVerdict[]) {
    const seen = replicas.map((replica) => `${replica.node}: ${replica.reason}`).join('; ') || 'no replicas configured';
    super(`no replica of shard ${shard} is within ${maxLagMs} ms [${seen}]`, { shard, retryable: true });
    this.replicas = replicas;
  }
}

export class InvalidTokenError extends ShardKitError {
  readonly code = 'INVALID_TOKEN';

  constructor(detail: string) {
    super(`invalid consistency token: ${detail}`);
  }
}

/** The read cache's shared level (Redis) could not be asked for what was asked of it explicitly (a flush). */
export class CacheUnavailableError extends ShardKitError {
  readonly code = 'CACHE_UNAVAILABLE';

  constructor(what: string) {
    super(`the shared read cache (Redis) did not answer: ${what} not done; retry once it is back`, { retryable: true });
  }
}

/** The caller's AbortSignal fired: the call stopped waiting and dispatched nothing more. */
export class QueryCancelledError extends ShardKitError {
  readonly code = 'QUERY_CANCELLED';

  constructor(reason: unknown) {
    super(`query cancelled${reason instanceof Error ? `: ${reason.message}` : reason === undefined ? '' : `: ${String(reason)}`}`, {
      cause: reason,
    });
  }
}

export type QueryPriority = 'critical' | 'normal' | 'background';

/** A node had no room for the query (in flight and queued full for its priority): shed, not run. */
export class ShardOverloadedError extends ShardKitError {
  readonly code = 'SHARD_OVERLOADED';
  readonly retryAfterMs: number;
  readonly priority: QueryPriority;

  constructor(shard: string, node: string, priority: QueryPriority, retryAfterMs: number) {
    super(`node ${node} of shard ${shard} is saturated; ${priority} query shed, retry in about ${retryAfterMs} ms`, {
      shard,
      node,
      retryable: true,
    });
    this.retryAfterMs = retryAfterMs;
    this.priority = priority;
  }
}

/** What a degradation level refused: background work, or a read of several shards. */
export type DegradedRefusal = 'background' | 'scatter';

/**
 * The kit's degradation level refused the call before it reached a node (docs/degradation.md):
 * level 1 and up shed background work, level 3 reads of more than one shard; critical calls are
 * never refused. Nothing ran, so a retry is safe; `retryAfterMs` is when the level may next fall.
 */
export class DegradedError extends ShardKitError {
  readonly code = 'DEGRADED';
  readonly level: number;
  readonly refused: DegradedRefusal;
  readonly retryAfterMs: number;

  constructor(level: number, refused: DegradedRefusal, what: string, retryAfterMs: number, where: { shard?: string; node?: string } = {}) {
    super(`degradation level ${level}: ${what} refused (${refused === 'background' ? 'background work is shed' : 'only critical callers may read several shards'}), retry in about ${retryAfterMs} ms`, {
      ...where,
      retryable: true,
    });
    this.level = level;
    this.refused = refused;
    this.retryAfterMs = retryAfterMs;
  }
}

export class InvalidCursorError extends ShardKitError {
  readonly code = 'INVALID_CURSOR';

  constructor(detail: string) {
    super(`invalid page cursor: ${detail}`);
  }
}

/*
 * The errors of migrations name what they are about by `subject`, the caller's description of
 * it: `online migration "users_v2"`, or `the rebalance` (which runs on the same machinery).
 */

/** Someone else moved the migration (its version changed) between reading and writing its state. */
export class MigrationConflictError extends ShardKitError {
  readonly code = 'MIGRATION_CONFLICT';

  constructor(subject: string, version: number) {
    super(`${subject} changed since version ${version} was read; read its status and retry`, { retryable: true });
  }
}

/** Another runner holds the migration's lock. */
export class MigrationLockedError extends ShardKitError {
  readonly code = 'MIGRATION_LOCKED';

  constructor(subject: string) {
    super(`${subject} is being driven by another runner (its lock is held); wait for it or stop it`, { retryable: true });
  }
}

/** A phase's gate is closed: what must be true first is in the message and in `reasons`. */
export class MigrationGateError extends ShardKitError {
  readonly code = 'MIGRATION_GATE';
  readonly reasons: readonly string[];

  constructor(subject: string, to: string, reasons: readonly string[]) {
    super(`${subject} cannot move to ${to}: ${reasons.join('; ')}`);
    this.reasons = reasons;
  }
}

/** A write the migration's current phase does not allow (the target before cutover, the source after cleanup). */
export class MigrationPhaseError extends ShardKitError {
  readonly code = 'MIGRATION_PHASE';

  constructor(migration: string, table: string, phase: string, detail: string) {
    super(`"${table}" is in online migration "${migration}" (phase ${phase}): ${detail}`);
  }
}

export class UnknownMigrationError extends ShardKitError {
  readonly code = 'UNKNOWN_MIGRATION';

  constructor(migration: string, known: readonly string[]) {
    super(`no online migration "${migration}" is defined; defined: ${known.join(', ') || '(none)'} (add it to onlineMigrations in the config)`);
  }
}

export class InvalidTopologyChangeError extends ShardKitError {
  readonly code = 'INVALID_TOPOLOGY_CHANGE';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid topology change:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.problems = problems;
  }
}

export class TopologySwitchingError extends ShardKitError {
  readonly code = 'TOPOLOGY_SWITCHING';
  readonly retryAfterMs: number;

  constructor(table: string, retryAfterMs: number) {
    super(`writes to "${table}" pause while a rebalance switches the topology on every instance; retry in about ${retryAfterMs} ms`, {
      retryable: true,
    });
    this.retryAfterMs = retryAfterMs;
  }
}

/** Where a call ran out of time. */
export type TimeoutStage = 'admission' | 'connect' | 'statement' | 'stream';

/**
 * A call did not finish within its deadline (`timeoutMs`, or `timeouts.queryMs`): it stopped
 * waiting, destroyed the connection it held and asked the server to cancel the statement. For a
 * write, the statement may still have committed unless it ran inside a transaction.
 */
export class QueryTimeoutError extends ShardKitError {
  readonly code = 'QUERY_TIMEOUT';
  readonly stage: TimeoutStage;
  readonly timeoutMs: number;

  constructor(shard: string, node: string, stage: TimeoutStage, timeoutMs: number, detail = '') {
    const what = { admission: 'waiting for admission', connect: 'waiting for a connection', statement: 'running the statement', stream: 'waiting for the next row' }[stage];
    super(`node ${node} of shard ${shard} did not answer within ${timeoutMs} ms (${what})${detail ? `: ${detail}` : ''}`, { shard, node, retryable: true });
    this.stage = stage;
    this.timeoutMs = timeoutMs;
  }
}

/** A connection to a node could not be made: refused, unreachable, or its credentials rejected. */
export class ConnectionFailedError extends ShardKitError {
  readonly code = 'CONNECTION_FAILED';
  /** The driver's own code (ECONNREFUSED, 28P01, ER_ACCESS_DENIED_ERROR, ...). */
  readonly driverCode: string | undefined;

  constructor(shard: string, node: string, where: string, reason: string, options: { cause: unknown; retryable: boolean; driverCode?: string }) {
    super(`cannot connect to node ${node} of shard ${shard} (${where}): ${reason}`, { shard, node, retryable: options.retryable, cause: options.cause });
    this.driverCode = options.driverCode;
  }
}

/**
 * A planned primary switch (`kit.failover()`, `shardkit failover`) could not be made: the node
 * named is not a candidate, another switch is under way, or a step failed (the cause says
 * which). The primary stays what it was; writes resume on it.
 */
export class FailoverError extends ShardKitError {
  readonly code = 'FAILOVER_FAILED';

  constructor(shard: string, node: string | undefined, reason: string, cause?: unknown) {
    super(`failover of shard ${shard}${node ? ` to ${node}` : ''} failed: ${truncate(reason, 500)}`, { shard, ...(node ? { node } : {}), retryable: false, ...(cause === undefined ? {} : { cause }) });
  }
}
