/**
 * Routed transactions on one shard: `kit.transaction(key, async (trx) => ...)`. The shard is the
 * key's owner (or named); `trx.table(name)` gives builders that are planned like kit.table()'s
 * and run inside that shard's database transaction, so a statement that would touch another
 * shard is refused (CrossShardTransactionError) before it runs. Every statement passes the
 * shard primary's guarded seam (deadline, breaker, typed errors, events); the whole transaction
 * shares one deadline (`timeoutMs`).
 *
 *   - `trx.transaction(fn)` is a savepoint: its failure rolls back its own statements only
 *   - `isolation` sets the level; `retries` re-runs the whole function after a serialization
 *     failure or a deadlock (40001/40P01, ER_LOCK_DEADLOCK/ER_LOCK_WAIT_TIMEOUT), with backoff
 *   - after COMMIT the read session (kit.session) records the shard's position, so its reads see
 *     the transaction's writes
 *   - a write to a table in an online migration or a rebalance carries its copy in the same
 *     transaction, or records it in the shard's sync outbox there (migrations/online/dual-write.ts);
 *     the outbox entries are synced after COMMIT. The migration coordinator tracks the whole
 *     transaction, so a phase change (a ring switch too) waits for it
 */
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import type { ResolvedConfig } from '../config/config-types.js';
import { executeInTransaction, refuseOtherShards } from '../engine/execute-in-transaction.js';
import { CrossShardTransactionError, type QueryPriority, TopologySwitchingError, UnknownShardError, UnsupportedQueryError } from '../errors.js';
import type { IsolationLevel } from '../dialect/two-phase.js';
import type { HashRing } from '../hashing/hash-ring.js';
import { type AnyQueryBuilder, READ_METHODS } from '../knex/builder-internals.js';
import type { DualWrite, PendingSync, ShardWrite } from '../migrations/online/dual-write.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { currentSession } from '../replicas/read-session.js';
import { recordWritePosition } from '../replicas/write-position.js';
import { explainsSwitch } from '../topology/shard-primary.js';
import type { Topology } from '../topology/topology.js';
import { retryingConflicts } from './conflict-retry.js';
import type { CachedReads, WriteMark } from './cached-reads.js';

export type { IsolationLevel };

export interface TransactionOptions {
  isolation?: IsolationLevel;
  /** Re-runs of the whole function after a serialization failure or deadlock. Default 0. */
  retries?: number;
  /** The whole transaction's deadline, from its start (default `timeouts.queryMs`). */
  timeoutMs?: number;
  priority?: QueryPriority;
}

/** Where a routed transaction runs: the owner of a key, or a named shard. */
export type TransactionTarget = { key: unknown } | { shard: string };

/** The transaction a routed builder runs in (see QueryPipeline). */
export interface TransactionBinding {
  execute(plan: QueryPlan, builder: AnyQueryBuilder): Promise<unknown>;
}

export interface RoutedTransaction {
  /** The shard this transaction runs on. */
  readonly shard: string;
  /** A routed builder whose statements run in this transaction. */
  table<TRecord extends {} = any, TResult = TRecord[]>(name: string): Knex.QueryBuilder<TRecord, TResult>;
  /** A savepoint: `fn`'s statements roll back alone when it fails. */
  transaction<T>(fn: (trx: RoutedTransaction) => Promise<T>): Promise<T>;
}

export interface TransactionParts {
  config: ResolvedConfig;
  topology: Topology;
  maxParameters: number;
  /** A routed builder of `table` bound to a transaction. */
  builder(table: string, binding: TransactionBinding): Knex.QueryBuilder;
  /** The migration coordinator: the copies of writes to migrating tables, and the wait of phase changes. */
  migrations: MigrationWrites;
  /** The read cache's invalidation: told of each write before it runs, and once its transaction has ended. */
  cacheWrites: Pick<CachedReads, 'beforeWrite' | 'wrote'>;
}

/** A transaction's writes, for the read cache once it ended. */
type Written = WriteMark[];

/** What a transaction needs of the migration coordinator (migrations/online/migration-coordinator.ts). */
export interface MigrationWrites {
  dualWrites(plan: QueryPlan): DualWrite[];
  writeInTransaction(trx: Knex.Transaction, shard: string, plan: QueryPlan, builder: AnyQueryBuilder, dualWrites: readonly DualWrite[]): Promise<ShardWrite>;
  afterCommit(pending: readonly PendingSync[], call: { priority: QueryPriority; timeoutMs: number }): Promise<void>;
  trackWrite<T>(write: Promise<T>): Promise<T>;
}

export async function runTransaction<T>(parts: TransactionParts, target: TransactionTarget, fn: (trx: RoutedTransaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? parts.config.timeouts.queryMs;
  const deadline = performance.now() + timeoutMs;
  const priority = options.priority ?? 'normal';
  return retryingConflicts(options.retries ?? 0, deadline, async () => {
    // Each attempt places the key afresh: a rebalance may have moved it since the last one.
    const ring = parts.topology.ring;
    const shard = 'shard' in target ? shardNamed(parts.topology, target.shard) : parts.topology.ownerOf(target.key);
    const pending: PendingSync[] = [];
    const written: Written = [];
    const attempt = async () => {
      // During a failover the transaction waits for the new primary before it begins.
      const primary = await shard.failover.ready(deadline);
      const result = await withScope({ priority, deadline, purpose: 'transaction' }, () =>
        primary.knex.transaction((trx) => fn(routedTransaction(parts, shard.name, trx, { pending, written }, ring)), options.isolation ? { isolationLevel: options.isolation } : {}),
      )
        .catch((error: unknown) => {
          // Not repeated (the function may have done more than SQL), but the next transactions wait for the new primary.
          if (explainsSwitch(error, primary)) shard.failover.suspect(primary, error);
          throw error;
        })
        .finally(() => {
          // Committed, rolled back or of unknown outcome: cached reads of what it wrote are not served again.
          for (const mark of written) parts.cacheWrites.wrote(mark);
        });
      await parts.migrations.afterCommit(pending, { priority, timeoutMs });
      return result;
    };
    // A phase change waits for the transaction and for the syncs after its commit.
    const result = await parts.migrations.trackWrite(attempt());
    const session = currentSession();
    if (session) await recordWritePosition(shard, session, deadline);
    return result;
  });
}

function routedTransaction(parts: TransactionParts, shard: string, trx: Knex.Transaction, log: { pending: PendingSync[]; written: Written }, ring: HashRing): RoutedTransaction {
  let open = true;
  trx.executionPromise.finally(() => (open = false)).catch(() => undefined);
  const binding: TransactionBinding = {
    execute: async (plan, builder) => {
      if (!open) throw new UnsupportedQueryError('transaction', 'the transaction has ended: use its builders inside its function');
      refuseMoved(parts, plan, shard, ring);
      if (!READ_METHODS.has(plan.method)) {
        const mark = parts.cacheWrites.beforeWrite(builder, plan);
        log.written.push(mark);
        if (mark.announced) await mark.announced;
      }
      const dualWrites = READ_METHODS.has(plan.method) || targetShards(plan.route).length === 0 ? [] : parts.migrations.dualWrites(plan);
      if (dualWrites.length === 0) return executeInTransaction(plan, builder, shard, trx, parts.maxParameters);
      const { result, pending: recorded } = await parts.migrations.writeInTransaction(trx, shard, plan, builder, dualWrites);
      log.pending.push(...recorded);
      return result;
    },
  };
  return {
    shard,
    table: (name) => parts.builder(name, binding),
    transaction: (inner) => trx.transaction((savepoint) => inner(routedTransaction(parts, shard, savepoint, log, ring))),
  };
}

/**
 * Refuses a statement whose rows live on another shard. If the ring switched since the transaction
 * began (a rebalance's cutover, or its rollback), the rows moved under it: that is retryable.
 */
function refuseMoved(parts: TransactionParts, plan: QueryPlan, shard: string, ring: HashRing): void {
  try {
    refuseOtherShards(plan, shard);
  } catch (error) {
    if (parts.topology.ring !== ring && error instanceof CrossShardTransactionError) throw new TopologySwitchingError(plan.table, parts.config.migrations.pollIntervalMs);
    throw error;
  }
}

function shardNamed(topology: Topology, name: string) {
  if (!topology.shards.some((shard) => shard.name === name)) throw new UnknownShardError(name, topology.shards.map((shard) => shard.name));
  return topology.shard(name);
}
