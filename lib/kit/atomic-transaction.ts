/**
 * Atomic transactions across shards (opt-in): `kit.transaction({ atomic: true }, async (trx) => ...)`.
 * `trx.table(name)` gives routed builders whose statements may reach any shards; each shard
 * joins as a participant the first time a statement reaches it, and the whole commits with
 * two-phase commit (transactions/atomic-commit.ts) or rolls back everywhere. One shard touched
 * commits in one phase, as a routed transaction would.
 *
 *   - every statement passes the shard primary's guarded seam; the transaction has one deadline
 *     (`timeoutMs`), and no decision to commit is taken after it
 *   - isolation is each shard's own (`isolation` sets it on every participant): there is no
 *     snapshot across shards, so a read on one shard does not see another's uncommitted writes,
 *     and two atomic transactions can see each other's effects on different shards in different
 *     orders; a lock wait across shards is not a deadlock any database detects, and ends at the
 *     deadline
 *   - reads that merge shards (ORDER BY/LIMIT/aggregates across shards, lookup joins, inlined
 *     subqueries) are refused inside it; reads of one shard, or plain selects, run
 *   - a table that an online migration or a rebalance moves is refused (MIGRATION_PHASE): use a
 *     routed transaction, which carries its dual writes
 *   - no savepoints; `retries` re-runs the whole function after a serialization failure or deadlock
 */
import type { Knex } from 'knex';
import { currentScope, withScope } from '../access/call-scope.js';
import type { ResolvedConfig } from '../config/config-types.js';
import { combineWriteResults, emptyResult } from '../engine/combine-results.js';
import { executeShardPart } from '../engine/execute-in-transaction.js';
import { MigrationPhaseError, TwoPhaseUnavailableError, UnsupportedQueryError } from '../errors.js';
import { internalsOf, READ_METHODS } from '../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { currentSession } from '../replicas/read-session.js';
import { recordWritePosition } from '../replicas/write-position.js';
import type { Topology } from '../topology/topology.js';
import { AtomicCommit, type TwoPhaseEvent } from '../transactions/atomic-commit.js';
import type { DecisionLog } from '../transactions/decision-log.js';
import { newTransactionId } from '../transactions/transaction-ids.js';
import { retryingConflicts } from './conflict-retry.js';
import type { WriteMark } from './cached-reads.js';
import { explainsSwitch } from '../topology/shard-primary.js';
import type { MigrationWrites, TransactionBinding, TransactionOptions, TransactionParts } from './routed-transaction.js';

export interface AtomicTransaction {
  /** The transaction's id, as recovery and `shardkit tx status` name it. */
  readonly gtrid: string;
  /** A routed builder whose statements run in this transaction, on whichever shards they reach. */
  table<TRecord extends {} = any, TResult = TRecord[]>(name: string): Knex.QueryBuilder<TRecord, TResult>;
}

export interface AtomicParts {
  config: ResolvedConfig;
  topology: Topology;
  maxParameters: number;
  builder(table: string, binding: TransactionBinding): Knex.QueryBuilder;
  migrations: Pick<MigrationWrites, 'dualWrites' | 'trackWrite'>;
  log: DecisionLog;
  onStep(event: TwoPhaseEvent): void;
  cacheWrites: TransactionParts['cacheWrites'];
}

export function runAtomicTransaction<T>(parts: AtomicParts, fn: (trx: AtomicTransaction) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? parts.config.timeouts.queryMs;
  const deadline = performance.now() + timeoutMs;
  const priority = options.priority ?? 'normal';
  return retryingConflicts(options.retries ?? 0, deadline, async () => {
    const commit = new AtomicCommit({
      gtrid: newTransactionId(Date.now() + timeoutMs),
      log: parts.log,
      deadline,
      ...(options.isolation ? { isolation: options.isolation } : {}),
      priority,
      settleTimeoutMs: parts.config.timeouts.queryMs,
      onStep: parts.onStep,
    });
    const touched = new Set<string>();
    const written: WriteMark[] = [];
    const attempt = withScope({ priority, deadline, purpose: 'transaction' }, async () => {
      const { transaction, close } = atomicTransaction(parts, commit, touched, written);
      let result: T;
      try {
        result = await fn(transaction);
      } catch (error) {
        close();
        await commit.rollback();
        throw error;
      }
      close();
      await commit.commit();
      return result;
    }).finally(() => {
      // Committed, rolled back or in doubt: cached reads of what it wrote are not served again.
      for (const mark of written) parts.cacheWrites.wrote(mark);
    });
    const result = await parts.migrations.trackWrite(attempt);
    const session = currentSession();
    if (session) for (const shard of touched) await recordWritePosition(parts.topology.shard(shard), session, deadline);
    return result;
  });
}

function atomicTransaction(parts: AtomicParts, commit: AtomicCommit, touched: Set<string>, written: WriteMark[]): { transaction: AtomicTransaction; close(): void } {
  let open = true;
  const binding: TransactionBinding = {
    execute: async (plan, builder) => {
      if (!open) throw new UnsupportedQueryError('transaction', 'the transaction has ended: use its builders inside its function');
      refuseUnsupported(parts, plan);
      if (!READ_METHODS.has(plan.method)) {
        const mark = parts.cacheWrites.beforeWrite(builder, plan);
        written.push(mark);
        if (mark.announced) await mark.announced;
      }
      const shards = targetShards(plan.route);
      const returning = internalsOf(builder)._single.returning !== undefined;
      if (shards.length === 0) return emptyResult(plan.method, returning);
      const results: unknown[] = [];
      for (const shard of shards) {
        const handle = parts.topology.shard(shard);
        const protocol = handle.primary.dialect.twoPhase;
        if (!protocol) throw new TwoPhaseUnavailableError(shard, 'its database has no prepared transactions (PGlite has none: use PostgreSQL or MySQL/MariaDB)');
        const primary = await handle.failover.ready(currentScope()?.deadline);
        const participant = await commit.join(shard, primary.knex, protocol).catch((error: unknown) => {
          if (explainsSwitch(error, primary)) handle.failover.suspect(primary, error);
          throw error;
        });
        touched.add(shard);
        results.push(await executeShardPart(plan, builder, shard, (query) => participant.held.bind(query), parts.maxParameters));
      }
      if (results.length === 1) return results[0];
      return READ_METHODS.has(plan.method) ? results.flat() : combineWriteResults(plan.method, returning, results);
    },
  };
  return {
    transaction: { gtrid: commit.gtrid, table: (name) => parts.builder(name, binding) },
    close: () => {
      open = false;
    },
  };
}

function refuseUnsupported(parts: AtomicParts, plan: QueryPlan): void {
  if (plan.merge || plan.lookupJoin || plan.inline) {
    throw new UnsupportedQueryError('atomic transaction', 'a read that merges shards (ORDER BY, LIMIT or aggregates across shards, a join, a subquery) does not run inside it; read by key, or outside it');
  }
  if (READ_METHODS.has(plan.method)) return;
  const [moving] = parts.migrations.dualWrites(plan);
  if (moving) {
    const name = moving.tables.migration.name;
    throw new MigrationPhaseError(name, plan.table, 'moving', 'an atomic transaction does not carry dual writes: write it in a routed transaction (kit.transaction(key, ...)) until the move completes');
  }
}
