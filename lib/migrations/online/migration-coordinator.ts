/**
 * One application instance's part in online migrations. It polls the control table, applies
 * each migration's phase to this instance's writes (refusals, dual writes, reverse dual writes)
 * and reads (shadow comparisons), and acknowledges the phase version it applies with a lease, so
 * that a runner can wait until every live instance follows a phase before the next step. An
 * instance that stops withdraws its acknowledgement; one that dies stops counting when its
 * lease runs out.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { type CallScope, withScope } from '../../access/call-scope.js';
import { combineWriteResults } from '../../engine/combine-results.js';
import { MigrationPhaseError, ScatterError, type ShardKitError, TopologySwitchingError } from '../../errors.js';
import { type AnyQueryBuilder, internalsOf } from '../../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../../planner/query-plan.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { PhaseEvent } from '../../observability/state-events.js';
import { CHANGES_CHANNEL, type ControlStore, type MigrationRecord } from './control-store.js';
import { applyPending, type DualWrite, dualWritesOf, type Involvement, type PendingSync, type ShardWrite, writeOnShard } from './dual-write.js';
import { drainOutbox } from './drain-outbox.js';
import type { MigrationTables } from './migration-tables.js';
import type { Row } from '../../config/online-migration.js';
import type { Phase } from './phases.js';
import { shadowCompare } from './shadow-read.js';

export interface CoordinatorOptions {
  pollIntervalMs: number;
  leaseMs: number;
  /** Bound parameters one statement may carry (an insert is split to fit). */
  maxParameters: number;
}

interface Followed {
  tables: MigrationTables;
  phase: Phase;
  version: number;
}

export interface CoordinatorStats {
  syncs: number;
  syncFailures: number;
  shadowCompared: number;
  shadowMismatches: number;
}

/** Follows one control-table record that changes the topology (a rebalance). */
export interface TopologyFollower {
  readonly name: string;
  apply(record: MigrationRecord | undefined): Promise<void>;
  involvement(table: string): Involvement | undefined;
  writesPaused(table: string): boolean;
  /** The rebalance applied now, if one is recorded. */
  readonly applied: { phase: Phase } | undefined;
}

export class MigrationCoordinator {
  readonly instanceId = randomUUID();
  readonly stats: CoordinatorStats = { syncs: 0, syncFailures: 0, shadowCompared: 0, shadowMismatches: 0 };
  private readonly followed = new Map<string, Followed>();
  private readonly background = new Set<Promise<unknown>>();
  /** Outbox entries whose sync failed here, by migration and shard: drained at each poll. */
  private readonly undrained = new Map<string, { shard: string; tables: MigrationTables }>();
  /** Writes running now: an acknowledgement waits for those that started under an older phase. */
  private readonly writes = new Set<Promise<unknown>>();
  private followedTopologyVersion: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private repoll: Promise<void> | undefined;
  /** Stops listening for phase changes (PostgreSQL control database), while listening. */
  private unlisten: (() => Promise<void>) | undefined;
  private listening: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly store: ControlStore,
    private readonly migrations: readonly MigrationTables[],
    private readonly databases: ShardDatabases,
    private readonly options: CoordinatorOptions,
    private readonly onPhase: (event: PhaseEvent) => void = () => {},
    /** Follows a rebalance (the ring, the moving tables); see rebalance/rebalance-follower.ts. */
    readonly topologyFollower?: TopologyFollower,
  ) {}

  get names(): string[] {
    return this.migrations.map((tables) => tables.migration.name);
  }

  tablesOf(name: string): MigrationTables | undefined {
    return this.migrations.find((tables) => tables.migration.name === name);
  }

  /**
   * Reads every migration's phase once; then keeps polling, and listens where the control
   * database can notify. A control database that cannot be read at start fails the start when
   * online migrations are configured; for the topology alone the kit starts on the config's
   * ring and keeps trying.
   */
  async start(): Promise<void> {
    if (this.migrations.length === 0 && !this.topologyFollower) return;
    if (this.migrations.length > 0) await this.refresh();
    else await this.refresh().catch(() => undefined);
    await this.listen();
    this.schedule();
  }

  /** Reads and applies the control table now (a runner calls this right after a transition). */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    // A poll in flight may have read the control table before the change that asks for this
    // refresh: read it once more after that poll.
    if (this.polling) {
      this.repoll ??= this.polling
        .catch(() => undefined)
        .then(() => {
          this.repoll = undefined;
          return this.refresh();
        });
      return this.repoll;
    }
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  /** The version of the topology record this instance applies (a rebalance), if any. */
  get topologyVersion(): number | undefined {
    return this.followedTopologyVersion;
  }

  phaseOf(name: string): { phase: Phase; version: number } | undefined {
    const followed = this.followed.get(name);
    return followed && { phase: followed.phase, version: followed.version };
  }

  /** Runs a write so that acknowledgements of later phases wait for it. */
  trackWrite<T>(work: Promise<T>): Promise<T> {
    this.writes.add(work);
    const forget = () => this.writes.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** True while writes to `table` must wait for a topology switch to reach every instance. */
  writesPaused(table: string): boolean {
    return this.topologyFollower?.writesPaused(table) ?? false;
  }

  /** How a table takes part in migrations this instance follows. */
  involvement(table: string): Involvement[] {
    const moving = this.topologyFollower?.involvement(table);
    const involved: Involvement[] = moving ? [moving] : [];
    for (const tables of this.migrations) {
      const followed = this.followed.get(tables.migration.name);
      for (const side of ['source', 'target'] as const) {
        if (tables.tableOf(side) !== table) continue;
        // Until this instance has read the phase, act as in the most restrictive: dual writing.
        involved.push({ tables, side, phase: followed?.phase ?? 'dual_write' });
      }
    }
    return involved;
  }

  /**
   * The copies a write to `plan`'s table needs now (dual-write.ts), refusing it when a phase
   * forbids it or a topology switch pauses it; none when the table takes part in no migration.
   */
  dualWrites(plan: QueryPlan): DualWrite[] {
    const involved = this.involvement(plan.table);
    if (involved.length === 0) return [];
    if (this.writesPaused(plan.table)) throw new TopologySwitchingError(plan.table, this.options.pollIntervalMs);
    return dualWritesOf(involved, plan.method);
  }

  /** No migration or rebalance could need a write carried now (the escape hatch skips its check). */
  get idle(): boolean {
    const rebalance = this.topologyFollower?.applied?.phase;
    if (rebalance !== undefined && rebalance !== 'pending' && rebalance !== 'cleanup') return false;
    return this.migrations.every((tables) => this.followed.get(tables.migration.name)?.phase === 'pending');
  }

  /**
   * Refuses a write to `table` made past the kit (kit.forKey(), kit.forShard()) while a
   * migration or a rebalance would have to carry it to the other side: it would be missed.
   */
  refuseUncarried(table: string): void {
    const [carried] = dualWritesOf(this.involvement(table), 'update');
    if (!carried) return;
    const { name } = carried.tables.migration;
    throw new MigrationPhaseError(name, table, this.phaseOf(name)?.phase ?? this.topologyFollower?.applied?.phase ?? 'moving', 'a write through kit.forKey()/kit.forShard() would not be dual-written: write it with kit.table() or kit.transaction(), which carry it');
  }

  /**
   * A kit.table() write with copies: each shard's part in its own transaction, in the caller's
   * scope (priority, deadline); then the outbox entries those transactions recorded, synced
   * with the caller's timeout afresh (the write has committed; a failure leaves them to a drain).
   */
  async write(plan: QueryPlan, builder: AnyQueryBuilder, dualWrites: readonly DualWrite[], call: { priority: CallScope['priority']; deadline: number; timeoutMs: number }): Promise<unknown> {
    const shards = targetShards(plan.route);
    const writeScope: CallScope = { priority: call.priority, deadline: call.deadline, purpose: 'query' };
    const outcomes = await Promise.allSettled(
      shards.map((shard) =>
        withScope(writeScope, () => this.databases.primary(shard).transaction((trx) => writeOnShard(this.databases, trx, shard, plan, builder, dualWrites, this.options.maxParameters))),
      ),
    );
    const committed = outcomes.flatMap((outcome, index) => (outcome.status === 'fulfilled' ? [{ shard: shards[index]!, write: outcome.value }] : []));
    await this.afterCommit(committed.flatMap(({ write }) => write.pending), call);
    const failures = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? [{ shard: shards[index]!, error: outcome.reason as ShardKitError }] : []));
    if (failures.length === 1 && shards.length === 1) throw failures[0]!.error;
    if (failures.length > 0) throw new ScatterError(failures, committed.map(({ shard }) => shard), { write: true });
    return combineWriteResults(plan.method, internalsOf(builder)._single.returning !== undefined, committed.map(({ write }) => write.result));
  }

  /** One statement of a routed transaction on `shard`, with its copies in that transaction. */
  writeInTransaction(trx: Knex.Transaction, shard: string, plan: QueryPlan, builder: AnyQueryBuilder, dualWrites: readonly DualWrite[]): Promise<ShardWrite> {
    return writeOnShard(this.databases, trx, shard, plan, builder, dualWrites, this.options.maxParameters);
  }

  /** Syncs outbox entries whose transactions committed; a failure is counted and left for the next drain. */
  async afterCommit(pending: readonly PendingSync[], call: { priority: CallScope['priority']; timeoutMs: number }): Promise<void> {
    if (pending.length === 0) return;
    const syncScope: CallScope = { priority: call.priority, timeoutMs: call.timeoutMs, purpose: 'dual-write' };
    try {
      await withScope(syncScope, () => applyPending(this.databases, pending));
      this.stats.syncs += pending.length;
    } catch {
      this.stats.syncFailures++;
      for (const { shard, tables } of pending) this.undrained.set(`${tables.migration.name}\u0000${shard}`, { shard, tables });
    }
  }

  /** Applies outbox entries left by syncs that failed here (at each poll), until none is left. */
  private async drainFailed(): Promise<void> {
    for (const [id, { shard, tables }] of this.undrained) {
      const outcome = await withScope({ priority: 'background', purpose: 'dual-write' }, () => drainOutbox(this.databases, shard, [tables])).catch(() => undefined);
      if (outcome && outcome.left === 0) this.undrained.delete(id);
    }
  }

  /** After a select: during shadow_read, compare a sample of the rows with the target, in the background. */
  afterRead(table: string, result: unknown): void {
    // first() gives one row; pluck() gives values without keys, which cannot be compared.
    const rows = (Array.isArray(result) ? result : result ? [result] : []).filter((row) => typeof row === 'object' && row !== null);
    if (rows.length === 0) return;
    for (const { tables, side, phase } of this.involvement(table)) {
      if (side !== 'source' || phase !== 'shadow_read') continue;
      if (Math.random() >= (tables.migration.shadowSampleRate ?? 0.1)) continue;
      const version = this.followed.get(tables.migration.name)?.version ?? 0;
      const work = shadowCompare(this.databases, tables, this.store, version, rows as Row[])
        .then((outcome) => {
          this.stats.shadowCompared += outcome.compared;
          this.stats.shadowMismatches += outcome.mismatches;
        })
        .catch(() => undefined)
        .finally(() => this.background.delete(work));
      this.background.add(work);
    }
  }

  /** Waits for shadow comparisons in flight (tests and shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.background]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.listening;
    await this.unlisten?.();
    await this.repoll?.catch(() => undefined);
    await this.polling?.catch(() => undefined);
    await this.settle();
    const names = this.topologyFollower ? [...this.names, this.topologyFollower.name] : this.names;
    await Promise.all(names.map((name) => this.store.forget(name, this.instanceId).catch(() => undefined)));
  }

  /** A notification makes this instance read the control table at once; a lost listener is retried at the next poll. */
  private listen(): Promise<void> {
    const { feed } = this.store;
    if (!feed || this.unlisten || this.stopped) return Promise.resolve();
    this.listening ??= feed
      .listen(
        this.store.db,
        CHANGES_CHANNEL,
        () => void this.refresh().catch(() => undefined),
        () => {
          this.unlisten = undefined;
        },
      )
      .then(
        async (stop) => {
          if (this.stopped) await stop();
          else this.unlisten = stop;
        },
        () => undefined,
      )
      .finally(() => {
        this.listening = undefined;
      });
    return this.listening;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      Promise.all([this.refresh(), this.listen()])
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    const acks: { name: string; version: number }[] = [];
    for (const tables of this.migrations) {
      const { name } = tables.migration;
      const record = await this.store.get(name);
      const phase = record?.phase ?? 'pending';
      const version = record?.version ?? 0;
      const before = this.followed.get(name);
      this.followed.set(name, { tables, phase, version });
      if (before?.version !== version && record) this.onPhase({ migration: name, phase, version });
      acks.push({ name, version });
    }
    const follower = this.topologyFollower;
    if (follower) {
      const record = await this.store.get(follower.name);
      if (record?.version !== this.followedTopologyVersion) {
        await follower.apply(record);
        if (record && this.followedTopologyVersion !== undefined) this.onPhase({ migration: follower.name, phase: record.phase, version: record.version });
        this.followedTopologyVersion = record?.version;
      }
      // Registered even before any rebalance exists (version 0): a runner must wait for every
      // instance, including one that started a moment before the rebalance did.
      acks.push({ name: follower.name, version: record?.version ?? 0 });
    }
    // A phase counts as applied once no write that started under an earlier one is still running.
    await Promise.allSettled([...this.writes]);
    await this.drainFailed();
    for (const { name, version } of acks) await this.store.ack(name, this.instanceId, version, this.options.leaseMs);
  }
}
