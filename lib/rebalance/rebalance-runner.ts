/**
 * Adds, removes or reweights shards while the application runs: a rebalance is an online
 * migration of every sharded table at once whose source placement is the old ring and whose
 * target placement is the new one, for the rows whose owner changes. It reuses the phases,
 * gates, dual writes, resumable throttled backfill, verify-and-repair and shadow reads of online
 * migrations (migration-runner.ts); what is its own:
 *
 *   start     plans the change, checks every shard has the tables, reads each table's primary
 *             key, and records both rings in the control table (phase pending; advance moves on
 *             once every instance knows)
 *   cutover   switches the ring on every instance (writes to moving tables pause for the switch)
 *   cleanup   deletes the moved rows from their old owners in small batches, then the markers
 *   abort     after a rollback to pending: deletes the copies from their would-be owners
 *
 * Until cleanup (or abort) ends, moving rows are marked on both shards, so statements on every
 * shard see each row once (move-markers.ts).
 */
import type { ResolvedConfig } from '../config/config-types.js';
import { InvalidTopologyChangeError, MigrationGateError, UnknownTableError } from '../errors.js';
import { HashRing, type RingShard } from '../hashing/hash-ring.js';
import type { ControlStore, MigrationRecord } from '../migrations/online/control-store.js';
import type { MigrationCoordinator } from '../migrations/online/migration-coordinator.js';
import type { MigrationStatus, OnlineMigrationRunner } from '../migrations/online/migration-runner.js';
import type { MigrationTables } from '../migrations/online/migration-tables.js';
import { ensureOutbox } from '../migrations/online/sync-outbox.js';
import { targetWritable } from '../migrations/online/phases.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import { ringShardsOf } from '../topology/topology.js';
import { clearMarkers, countMarked, countRunMarkers, ensureMarkersTable, type MarkerDirection, markedKeys, markSlotRuns } from './move-markers.js';
import { whereValueIn } from '../dialect/value-list.js';
import { shardRunsOf } from './slot-moves.js';
import { removeSlotCopies } from './slot-copy-removal.js';
import { REBALANCE_NAME, REBALANCE_TITLE, rebalanceOf, withRebalance } from './rebalance-record.js';
import type { CountOptions } from './row-moves.js';
import { planRebalance, type RebalancePlan } from './rebalance-plan.js';
import type { TopologyChange } from './topology-change.js';

export interface RebalanceStatus extends MigrationStatus {
  /** The ring before and after; absent before any rebalance. */
  from?: RingShard[];
  to?: RingShard[];
  /** Every second copy is gone: the move is over (or was aborted). */
  cleaned: boolean;
}

export interface RemovalOptions {
  waitForAcksMs?: number;
  batchSize?: number;
  onProgress?: (progress: CleanupProgress) => void;
}

export interface CleanupProgress {
  table: string;
  shard: string;
  /** Shard-key values whose rows were deleted so far. */
  deleted: number;
  /** Shard-key values with a second copy of `table` on `shard` when the removal began. */
  total: number;
}

export interface RebalanceContext {
  databases: ShardDatabases;
  config: ResolvedConfig;
  store: ControlStore;
  phases: OnlineMigrationRunner;
  coordinator: MigrationCoordinator;
  /** Online migrations in progress: a rebalance does not start beside one. */
  activeMigrations: () => Promise<string[]>;
  /** The tables this instance moves now (rebalance-follower.ts), as the phase machinery sees them. */
  movingTables: () => MigrationTables[];
}

export interface RebalanceStartOptions {
  /** How long a start waits for every instance to apply the end of the last move (tables with a slot column). Default 10000. */
  waitForAcksMs?: number;
}

export class RebalanceRunner {
  constructor(private readonly context: RebalanceContext) {}

  /** The phase machinery: advance, backfill, verify, rollback, as for online migrations. */
  get phases(): OnlineMigrationRunner {
    return this.context.phases;
  }

  /** The ring's shards now: the config's, or those a rebalance switched to. */
  async currentRing(): Promise<RingShard[]> {
    const record = await this.context.store.peek(REBALANCE_NAME);
    const state = rebalanceOf(record);
    if (!record || !state) return ringShardsOf(this.context.config);
    return targetWritable(record.phase) ? state.to : state.from;
  }

  /** What `change` would move, counted on the data; changes nothing. */
  async plan(change: TopologyChange, options: CountOptions = {}): Promise<RebalancePlan> {
    return planRebalance(this.context.databases, this.context.config, await this.currentRing(), change, options);
  }

  /**
   * Records the change (phase pending). Every instance then marks the moving tables' rows for
   * statements on every shard before `advance` starts dual writing: a copy made while some
   * instance did not know of the move would show twice there.
   */
  async start(change: TopologyChange, options: RebalanceStartOptions = {}): Promise<RebalancePlan> {
    const { databases, config } = this.context;
    const plan = await this.plan(change);
    const problems: string[] = [];
    const active = await this.context.activeMigrations();
    if (active.length > 0) problems.push(`online migration(s) ${active.join(', ')} in progress: finish or roll them back first`);
    const shards = [...new Set([...plan.before, ...plan.after].map((shard) => shard.name))];
    const keys: Record<string, string[]> = {};
    for (const [table, { shardKey, slotColumn }] of config.tables) {
      const missing = [];
      for (const shard of shards) if (!(await databases.primary(shard).schema.hasTable(table))) missing.push(shard);
      if (missing.length > 0) {
        problems.push(`table ${table} is missing on ${missing.join(', ')}: run shardkit migrate latest first`);
        continue;
      }
      const withoutSlots = [];
      if (slotColumn) for (const shard of shards) if (!(await databases.primary(shard).schema.hasColumn(table, slotColumn))) withoutSlots.push(shard);
      if (withoutSlots.length > 0) problems.push(`table ${table} has no slot column ${slotColumn} on ${withoutSlots.join(', ')}: add it with addSlotColumn() in a schema migration`);
      const key = await databases.dialectOf(shards[0]!).primaryKey(databases.primary(shards[0]!), table);
      if (!key.includes(shardKey)) problems.push(`table ${table}: its primary key (${key.join(', ') || 'none'}) must contain the shard key ${shardKey}`);
      keys[table] = key;
    }
    if (problems.length > 0) throw new InvalidTopologyChangeError(problems);
    await Promise.all(shards.flatMap((shard) => [ensureMarkersTable(databases.primary(shard)), ensureOutbox(databases.primary(shard))]));
    await this.context.phases.exclusive(async () => {
      const record = await this.context.store.getOrCreate(REBALANCE_NAME);
      const previous = rebalanceOf(record);
      if (!['pending', 'cleanup'].includes(record.phase) || (previous && !previous.cleaned)) {
        throw new MigrationGateError(REBALANCE_TITLE, 'a new start', [`it is in ${record.phase}: finish it (cleanup) or roll it back and abort it first`]);
      }
      // Tables with a slot column are marked by slot runs, before any instance can copy a row, and
      // once every instance has left the last move behind: one still hiding its copies would hide by these runs.
      const slotTables = Object.keys(keys).filter((table) => config.tables.get(table)?.slotColumn);
      if (previous && slotTables.length > 0) {
        const waiting = await this.context.phases.waitForAcks(record.version, Date.now() + (options.waitForAcksMs ?? 10_000));
        if (waiting.length > 0) throw new MigrationGateError(REBALANCE_TITLE, 'a new start', waiting);
      }
      const runs = shardRunsOf(await HashRing.create(plan.before), await HashRing.create(plan.after), shards);
      for (const table of slotTables) await markSlotRuns(databases, table, runs);
      await this.context.store.transition(record, 'pending', withRebalance({ backfill: {}, history: record.state.history }, { from: plan.before, to: plan.after, keys }));
      await this.context.coordinator.refresh();
    });
    return plan;
  }

  async status(): Promise<RebalanceStatus> {
    const [status, record] = await Promise.all([this.context.phases.status(), this.context.store.peek(REBALANCE_NAME)]);
    const state = rebalanceOf(record);
    return { ...status, ...(state ? { from: state.from, to: state.to } : {}), cleaned: state ? state.cleaned === true : true };
  }

  /**
   * In phase cleanup: deletes the moved rows from their old owners (all at once), `batchSize`
   * keys (default 20,000) per transaction with their markers (with a slot column: keys listed in
   * the runs each old owner gives away, slot-copy-removal.ts), then the remaining markers. Waits
   * until every instance applies cleanup, so that no reverse dual write brings a deleted row back.
   */
  cleanup(options: RemovalOptions = {}): Promise<RebalanceStatus> {
    return this.removeSecondCopies('cleanup', 'out', options);
  }

  /**
   * After a rollback to pending: deletes the copies made on the new owners. Waits until every
   * instance has stopped dual writing (acknowledged pending), so that no copy is made after.
   */
  abort(options: RemovalOptions = {}): Promise<RebalanceStatus> {
    return this.removeSecondCopies('pending', 'in', options);
  }

  private removeSecondCopies(phase: 'cleanup' | 'pending', direction: MarkerDirection, options: RemovalOptions): Promise<RebalanceStatus> {
    const step = phase === 'cleanup' ? 'cleanup' : 'abort';
    return this.context.phases.exclusive(async () => {
      const record = await this.record();
      if (record.phase !== phase) throw new MigrationGateError(REBALANCE_TITLE, step, [`move to ${phase} first (now ${record.phase})`]);
      if (rebalanceOf(record)!.cleaned) return this.status();
      const waiting = await this.context.phases.waitForAcks(record.version, Date.now() + (options.waitForAcksMs ?? 10_000));
      if (waiting.length > 0) throw new MigrationGateError(REBALANCE_TITLE, step, waiting);
      await this.context.phases.drainOrRefuse(step);
      const { from, to } = rebalanceOf(record)!;
      // The second copies are on the old owners after cutover, on the new ones before it.
      await this.removeMarked(record, direction, direction === 'out' ? from : to, direction === 'out' ? to : from, options);
      return this.status();
    });
  }

  /**
   * Drops the record of a finished or aborted rebalance, so that the config's ring places keys
   * again: only while every sharded table is empty (demos and tests that start over); with rows,
   * rebalance back instead.
   */
  forget(): Promise<void> {
    return this.context.phases.exclusive(async () => {
      const record = await this.context.store.peek(REBALANCE_NAME);
      if (!record) return;
      const rebalance = rebalanceOf(record);
      if (rebalance && !rebalance.cleaned) {
        throw new MigrationGateError(REBALANCE_TITLE, 'forget', [`it is in ${record.phase}: finish it (cleanup) or roll it back and abort it first`]);
      }
      const { databases, config } = this.context;
      for (const table of config.tables.keys()) {
        for (const shard of databases.shardNames) {
          const db = databases.primary(shard);
          if ((await db.schema.hasTable(table)) && (await db(table).first())) {
            throw new MigrationGateError(REBALANCE_TITLE, 'forget', [`${table} has rows on ${shard}: they are placed by the rebalanced ring; rebalance back instead`]);
          }
        }
      }
      await this.context.store.remove(REBALANCE_NAME);
      await this.context.coordinator.refresh();
    });
  }

  /**
   * Deletes, on every shard of `holders`, the rows of the keys marked `direction` (the second
   * copies), then every marker of the move, and records that the move left no copy behind.
   */
  private async removeMarked(
    record: MigrationRecord,
    direction: MarkerDirection,
    holders: readonly RingShard[],
    others: readonly RingShard[],
    options: RemovalOptions,
  ): Promise<void> {
    const { databases, config, store } = this.context;
    const batchSize = options.batchSize ?? 20000;
    for (const table of Object.keys(rebalanceOf(record)!.keys)) {
      const shardKey = config.tables.get(table)?.shardKey;
      if (!shardKey) throw new UnknownTableError(table, [...config.tables.keys()]);
      // A table with a slot column: its copies by the runs they lie in (slot-copy-removal.ts).
      const bySlots = this.context.movingTables().find((moving) => moving.tableOf('source') === table && moving.copiedAsIs?.slots);
      if (bySlots) {
        const onProgress = (shard: string, deleted: number, total: number) => options.onProgress?.({ table, shard, deleted, total });
        await removeSlotCopies(databases, bySlots, { direction, batchSize, onProgress });
      } else if (await this.markedByRuns(table, [...holders, ...others])) {
        // Marked by runs when the move started, and this instance does not know the slot column: it would leave every copy behind.
        throw new MigrationGateError(REBALANCE_TITLE, direction === 'out' ? 'cleanup' : 'abort', [`${table} was marked by slot runs: run it with tables.${table}.slotColumn in the config`]);
      }
      // Keys marked one by one (every key of a table without a slot column): the holders delete at
      // once, each on its own primary, in batches of its own. All settle before a failure is
      // reported, so that none still deletes after the step ended.
      const outcomes = await Promise.allSettled(holders.map(({ name: shard }) => this.removeMarkedOn(shard, table, shardKey, direction, batchSize, options)));
      const failed = outcomes.find((outcome) => outcome.status === 'rejected');
      if (failed) throw failed.reason;
      const everyShard = new Set([...holders, ...others].map((shard) => shard.name));
      await Promise.all([...everyShard].map((shard) => clearMarkers(databases.primary(shard), databases.dialectOf(shard).family, table)));
    }
    await store.transition(record, record.phase, withRebalance(record.state, { ...rebalanceOf(record)!, cleaned: true }));
    await this.context.coordinator.refresh();
  }

  private async markedByRuns(table: string, shards: readonly RingShard[]): Promise<boolean> {
    const counts = await Promise.all(shards.map(({ name }) => countRunMarkers(this.context.databases.primary(name), table)));
    return counts.some((count) => count > 0);
  }

  /** Deletes the rows of `shard` whose keys are marked `direction`, with their markers, `batchSize` keys per transaction. */
  private async removeMarkedOn(shard: string, table: string, shardKey: string, direction: MarkerDirection, batchSize: number, options: RemovalOptions): Promise<void> {
    const db = this.context.databases.primary(shard);
    const { family } = this.context.databases.dialectOf(shard);
    const total = await countMarked(db, table, direction);
    let deleted = 0;
    if (total > 0) options.onProgress?.({ table, shard, deleted, total });
    for (;;) {
      // A batch's rows and their markers go together: a crash leaves no marker of a deleted row, nor the reverse.
      const removed = await db.transaction(async (trx) => {
        const keys = await markedKeys(trx, table, direction, batchSize);
        if (keys.length > 0) {
          await whereValueIn(trx(table), family, shardKey, keys).del();
          await clearMarkers(trx, family, table, direction, keys);
        }
        return keys.length;
      });
      if (removed === 0) return;
      deleted += removed;
      options.onProgress?.({ table, shard, deleted, total });
    }
  }

  private async record(): Promise<MigrationRecord> {
    const record = await this.context.store.peek(REBALANCE_NAME);
    if (!record || !rebalanceOf(record)) throw new MigrationGateError(REBALANCE_TITLE, 'a next step', ['no rebalance has started: rebalance run first']);
    return record;
  }
}
