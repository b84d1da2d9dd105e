/**
 * Drives one online migration through its phases (see phases.ts): one table pair, or for a
 * rebalance every sharded table at once (`parts`). Every command takes the migration's advisory
 * lock on the control database first, so two runners never drive one migration; phase changes
 * are compare-and-set on the version, and each is checked against its gate first:
 *
 *   any advance        every live instance has acknowledged the current phase
 *   backfill -> verify every source shard's backfill is done
 *   verify -> shadow   a verify ran in this phase and left no unrepaired difference
 *   shadow -> cutover  no more shadow mismatches than allowed since shadow_read began or since
 *                      the last verify that left nothing unrepaired (it repaired what they saw),
 *                      and the verify is still clean
 *   any move           the sync outbox is drained: every copy a committed write recorded there
 *                      has been applied (the runner drains it first; a shard it cannot drain
 *                      blocks the move, rollbacks included)
 *
 * Verify repairs from the side the application writes in the phase: the source until cutover,
 * the target in cutover, so that a repair never overwrites a newer acknowledged write.
 *
 * Rollback moves one phase back (not from cleanup). Cleanup, once reached, can retire the old
 * table (rename, or drop) only when told so explicitly.
 *
 * A migration that switches the topology (a rebalance) crosses the cutover boundary in two
 * steps: writes to the moving tables pause on every instance (each acknowledges once its
 * writes in flight are done), then the ring switches and writes resume at the new owners; so no
 * two instances ever write one row at two owners.
 */
import type { Knex } from 'knex';
import { withScope } from '../../access/call-scope.js';
import type { ThrottleEvent } from '../../observability/state-events.js';
import type { AdvisoryLocks, ReleaseLock } from '../../dialect/advisory-locks.js';
import { MigrationGateError, MigrationLockedError } from '../../errors.js';
import { loadKeyHasher } from '../../hashing/key-hasher.js';
import type { ShardDatabases } from '../../access/shard-databases.js';
import { RateLimiter } from '../../util/rate-limiter.js';
import { type BackfillOptions, backfillShard, countSourceRows } from './backfill.js';
import type { BackfillCheckpoint, ControlStore, InstanceAck, MigrationRecord, MigrationState, VerifyReport } from './control-store.js';
import type { MigrationCoordinator } from './migration-coordinator.js';
import type { MigrationTables } from './migration-tables.js';
import { nextPhase, type Phase, previousPhase } from './phases.js';
import { drainOutbox } from './drain-outbox.js';
import { countOutbox, ensureOutbox } from './sync-outbox.js';
import { type VerifyOptions, verifyMigration } from './verify.js';

export interface RunnerContext {
  name: string;
  /** What errors call it: `online migration "users_v2"`, `the rebalance`. */
  title: string;
  databases: ShardDatabases;
  store: ControlStore;
  coordinator: MigrationCoordinator;
  /** The table pairs that move together (one for an online migration). */
  parts: () => MigrationTables[];
  /** Crossing cutover switches the ring (a rebalance). */
  switchesTopology?: boolean;
  /** Why the migration may not start now (another one moving the same tables), if anything. */
  startGate?: () => Promise<string[]>;
  /** The control database and its dialect's locks. */
  lockDb: Knex;
  locks: AdvisoryLocks;
  /** Why writes should pause now (replica lag, queued load), or undefined. */
  throttleReason: (maxLagMs: number) => string | undefined;
  /** Told when the backfill starts (a reason) or stops (undefined) pausing. */
  onThrottle: (event: ThrottleEvent) => void;
}

export interface MigrationStatus {
  name: string;
  phase: Phase;
  version: number;
  next: Phase | undefined;
  /** Why `advance` would be refused now; empty when it would succeed. */
  blockedBy: string[];
  instances: (InstanceAck & { current: boolean })[];
  backfill: (BackfillCheckpoint & { shard: string })[];
  verify: VerifyReport | undefined;
  shadowMismatches: number;
  /** Copies committed writes recorded in the sync outbox that wait to be applied. */
  outbox: number;
}

export interface CleanupOptions {
  /** Really rename or drop the old table (otherwise only report). */
  yes?: boolean;
  dryRun?: boolean;
  action?: 'rename' | 'drop';
}

export class OnlineMigrationRunner {
  constructor(private readonly context: RunnerContext) {}

  get name(): string {
    return this.context.name;
  }

  async status(): Promise<MigrationStatus> {
    const record = await this.context.store.getOrCreate(this.name);
    const instances = await this.context.store.liveInstances(this.name);
    const mismatches = await this.shadowMismatches(record);
    const next = nextPhase(record.phase);
    const outbox = await this.outboxBacklog();
    // Waiting entries are drained by advance itself; a shard whose outbox cannot be read would block it.
    const unreadable = outbox.filter(({ entries }) => Number.isNaN(entries));
    const blockedBy = next ? [...this.gate(record, next, instances, mismatches), ...outboxReasons(unreadable)] : ['the migration is finished'];
    return {
      name: this.name,
      phase: record.phase,
      version: record.version,
      next,
      blockedBy,
      instances: instances.map((instance) => ({ ...instance, current: instance.version === record.version })),
      backfill: this.units().map(({ id }) => ({ shard: id, ...(record.state.backfill[id] ?? { lastKey: null, rows: 0, done: false }) })),
      verify: record.state.verify,
      shadowMismatches: mismatches,
      outbox: outbox.reduce((sum, { entries }) => sum + (Number.isNaN(entries) ? 0 : entries), 0),
    };
  }

  /** pending -> dual_write. */
  start(): Promise<MigrationRecord> {
    return this.exclusive(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      if (record.phase !== 'pending') return record;
      const blocked = (await this.context.startGate?.()) ?? [];
      if (blocked.length > 0) throw new MigrationGateError(this.context.title, 'dual_write', blocked);
      await this.ensureOutboxes();
      return this.transition(record, 'dual_write');
    });
  }

  /** One phase forward, if its gate is open; `waitForAcksMs` waits that long for instances to catch up. */
  advance(options: { waitForAcksMs?: number } = {}): Promise<MigrationRecord> {
    return this.exclusive(async () => {
      const deadline = Date.now() + (options.waitForAcksMs ?? 0);
      for (;;) {
        const record = await this.context.store.getOrCreate(this.name);
        const next = nextPhase(record.phase);
        if (!next) throw new MigrationGateError(this.context.title, 'a next phase', ['the migration is finished']);
        const instances = await this.context.store.liveInstances(this.name);
        const reasons = this.gate(record, next, instances, await this.shadowMismatches(record));
        if (reasons.length === 0) return this.move(record, next, deadline);
        const waitingOnAcks = reasons.every((reason) => reason.startsWith('instance'));
        if (!waitingOnAcks || Date.now() >= deadline) throw new MigrationGateError(this.context.title, next, reasons);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
  }

  /** One phase back; every write so far is in both tables, so nothing is lost. */
  rollback(options: { waitForAcksMs?: number } = {}): Promise<MigrationRecord> {
    return this.exclusive(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      const previous = previousPhase(record.phase);
      if (!previous) throw new MigrationGateError(this.context.title, 'a previous phase', [`cannot roll back from ${record.phase}`]);
      return this.move(record, previous, Date.now() + (options.waitForAcksMs ?? 10_000));
    });
  }

  /** Waits until every live instance applies `version`; the reasons it still waits for, when the deadline passes first. */
  async waitForAcks(version: number, deadline: number): Promise<string[]> {
    for (;;) {
      const behind = instancesBehind(await this.context.store.liveInstances(this.name), version);
      if (behind.length === 0 || Date.now() >= deadline) return behind;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Copies the remaining source rows (resuming from each shard's checkpoint); phase backfill only. */
  backfill(options: BackfillOptions & { maxLagMs?: number } = {}): Promise<MigrationRecord> {
    return this.exclusive(async () => {
      let record = await this.context.store.getOrCreate(this.name);
      if (record.phase !== 'backfill') throw new MigrationGateError(this.context.title, 'backfill', [`the migration is in ${record.phase}, not backfill`]);
      const state: MigrationState = structuredClone(record.state);
      let saving = Promise.resolve();
      const save = (unit: string, checkpoint: BackfillCheckpoint) => {
        state.backfill[unit] = checkpoint;
        saving = saving.then(async () => {
          record = await this.context.store.saveState(record, structuredClone(state));
        });
        return saving;
      };
      let pausedFor: string | undefined;
      const throttle = () => {
        const reason = this.context.throttleReason(options.maxLagMs ?? 1000);
        if ((reason === undefined) !== (pausedFor === undefined)) this.context.onThrottle({ migration: this.name, reason });
        pausedFor = reason;
        return reason;
      };
      const { databases } = this.context;
      const rate = options.maxRowsPerSecond ? new RateLimiter(options.maxRowsPerSecond) : undefined;
      const units = this.units().map((unit) => ({ ...unit, start: state.backfill[unit.id] ?? { lastKey: null, rows: 0, done: false } }));
      const totals = await Promise.all(units.map(({ tables, shard }) => countSourceRows(databases, tables, shard)));
      for (const [index, { id, start }] of units.entries()) options.onProgress?.({ shard: id, copied: start.rows, total: totals[index]!, done: start.done });
      await Promise.all(
        units.map(({ id, tables, shard, start }, index) =>
          backfillShard(databases, tables, shard, start, totals[index]!, { save: (checkpoint) => save(id, checkpoint), throttle, ...(rate ? { rate } : {}) }, {
            ...options,
            ...(options.onProgress ? { onProgress: (progress) => options.onProgress?.({ ...progress, shard: id }) } : {}),
          }),
        ),
      );
      await saving;
      return record;
    });
  }

  /** Compares and repairs; the report gates cutover. From phase verify on. */
  verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    return this.exclusive(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      if (!['verify', 'shadow_read', 'cutover'].includes(record.phase)) {
        throw new MigrationGateError(this.context.title, 'verify', [`the migration is in ${record.phase}; verify runs from phase verify on`]);
      }
      // Copies still in the outbox would show as differences; applied first, they are none.
      await this.drainOrRefuse('verify');
      const outcome = { rowsChecked: 0, chunks: 0, differences: 0, repaired: 0, unrepaired: 0 };
      const direction = record.phase === 'cutover' ? 'backward' : 'forward';
      for (const tables of this.context.parts()) {
        const part = await verifyMigration(this.context.databases, tables, { ...options, direction });
        for (const measure of Object.keys(outcome) as (keyof typeof outcome)[]) outcome[measure] += part[measure];
      }
      const report: VerifyReport = { version: record.version, ...outcome, finishedAt: Date.now() };
      await this.context.store.saveState(record, { ...record.state, verify: report });
      return report;
    });
  }

  /** In phase cleanup: retires the old table on every shard (only with `yes`; `dryRun` only says what it would do). */
  cleanup(options: CleanupOptions = {}): Promise<string[]> {
    return this.exclusive(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      if (record.phase !== 'cleanup') throw new MigrationGateError(this.context.title, 'cleanup', [`advance to cleanup first (now ${record.phase})`]);
      const [tables] = this.context.parts() as [MigrationTables];
      const source = tables.tableOf('source');
      const retired = `${source}_retired_${new Date(record.updatedAt).toISOString().slice(0, 10).replaceAll('-', '')}`;
      const action = options.action ?? 'rename';
      const shards = tables.shardsOf('source');
      const plan = shards.map((shard) => (action === 'drop' ? `drop table ${source} on ${shard}` : `rename table ${source} to ${retired} on ${shard}`));
      if (options.dryRun || !options.yes) return plan.map((step) => `would ${step}`);
      await this.drainOrRefuse('cleanup');
      for (const shard of shards) {
        const db = this.context.databases.primary(shard);
        if (!(await db.schema.hasTable(source))) continue;
        if (action === 'drop') await db.schema.dropTable(source);
        else await db.schema.renameTable(source, retired);
      }
      return plan.map((step) => `did ${step}`);
    });
  }

  /**
   * Forgets a migration that has not started (pending) or has finished (cleanup), so that it can
   * run again from the beginning.
   */
  forget(): Promise<void> {
    return this.exclusive(async () => {
      const record = await this.context.store.get(this.name);
      if (record && record.phase !== 'pending' && record.phase !== 'cleanup') {
        throw new MigrationGateError(this.context.title, 'forget', [`it is in ${record.phase}: roll back to pending or finish it first`]);
      }
      await this.context.store.remove(this.name);
      await this.context.coordinator.refresh();
    });
  }

  private gate(record: MigrationRecord, next: Phase, instances: readonly InstanceAck[], mismatches: number): string[] {
    const reasons = instancesBehind(instances, record.version);
    const state = record.state;
    if (next === 'verify') {
      const pending = this.units().filter(({ id }) => !state.backfill[id]?.done);
      if (pending.length > 0) reasons.push(`the backfill is not done on ${pending.map(({ id }) => id).join(', ')}`);
    }
    if (next === 'shadow_read' || next === 'cutover') {
      if (!state.verify) reasons.push('no verify has run in this phase: run verify');
      else if (state.verify.unrepaired > 0) reasons.push(`the last verify left ${state.verify.unrepaired} differences unrepaired`);
    }
    if (next === 'cutover') {
      const allowed = this.context.parts()[0]?.migration.allowedShadowMismatches ?? 0;
      if (mismatches > allowed) reasons.push(`${mismatches} shadow-read mismatches since shadow_read began (allowed ${allowed})`);
    }
    return reasons;
  }

  /** Backfill units: every source shard of every part, by checkpoint id. */
  private units(): { id: string; tables: MigrationTables; shard: string }[] {
    const parts = this.context.parts();
    return parts.flatMap((tables) =>
      tables.shardsOf('source').map((shard) => ({ id: parts.length === 1 ? shard : `${tables.tableOf('source')}:${shard}`, tables, shard })),
    );
  }

  /**
   * A phase change, once the outbox is drained; across the cutover boundary of a topology switch,
   * in two steps (see above), draining again once every instance has paused its writes.
   */
  private async move(record: MigrationRecord, phase: Phase, deadline: number): Promise<MigrationRecord> {
    await this.drainOrRefuse(phase);
    const crossesCutover = (record.phase === 'cutover') !== (phase === 'cutover') && [record.phase, phase].every((side) => side !== 'cleanup');
    if (!this.context.switchesTopology || !crossesCutover) return this.transition(record, phase);
    const paused = await this.context.store.transition(record, record.phase, { ...record.state, switching: true });
    await this.context.coordinator.refresh();
    const waiting = await this.waitForAcks(paused.version, deadline);
    const undrained = waiting.length > 0 ? [] : await this.drainAll();
    if (waiting.length > 0 || undrained.length > 0) {
      await this.transition(paused, record.phase);
      throw new MigrationGateError(this.context.title, phase, [...waiting, ...outboxReasons(undrained)]);
    }
    return this.transition(paused, phase);
  }

  /**
   * Drains the outbox of every shard; a shard left with entries refuses `step`. Also before the
   * old copies are removed (cleanup, a rebalance's abort): a copy applied after them would
   * bring a row back.
   */
  async drainOrRefuse(step: string): Promise<void> {
    const undrained = await this.drainAll();
    if (undrained.length > 0) throw new MigrationGateError(this.context.title, step, outboxReasons(undrained));
  }

  /** Applies every outbox entry of this migration; the shards where some are left (or that failed). */
  private async drainAll(): Promise<OutboxBacklog[]> {
    const parts = this.context.parts();
    const drained = await Promise.all(
      this.context.databases.shardNames.map(async (shard) => {
        try {
          return { shard, entries: (await drainOutbox(this.context.databases, shard, parts)).left };
        } catch (error) {
          return { shard, entries: await countOutbox(this.context.databases, shard, parts).catch(() => Number.NaN), error };
        }
      }),
    );
    return drained.filter(({ entries }) => entries !== 0);
  }

  private async outboxBacklog(): Promise<OutboxBacklog[]> {
    const parts = this.context.parts();
    const counts = await Promise.all(
      this.context.databases.shardNames.map(async (shard) => ({ shard, entries: await countOutbox(this.context.databases, shard, parts).catch(() => Number.NaN) })),
    );
    return counts.filter(({ entries }) => entries !== 0);
  }

  /** The outbox table on every shard, before any write may record there. */
  private async ensureOutboxes(): Promise<void> {
    const { databases } = this.context;
    await Promise.all(databases.shardNames.map((shard) => ensureOutbox(databases.primary(shard))));
  }

  private async transition(record: MigrationRecord, phase: Phase): Promise<MigrationRecord> {
    const state: MigrationState = { ...record.state };
    delete state.switching;
    // A verify counts for the phase it ran in; a new phase (either way) asks for a fresh one,
    // except shadow_read, whose gate reuses the verify that let it open.
    if (phase === 'verify') delete state.verify;
    // Back at the start nothing is dual-written any more: a copy made before is stale, and the
    // next start must copy afresh rather than report the old checkpoints as done.
    if (phase === 'pending') {
      state.backfill = {};
      delete state.verify;
    }
    if (phase === 'shadow_read') state.shadowSince = Date.now();
    const moved = await this.context.store.transition(record, phase, state);
    await this.context.coordinator.refresh();
    return moved;
  }

  /** Mismatches since shadow_read began, or since a later verify that left nothing unrepaired. */
  private async shadowMismatches(record: MigrationRecord): Promise<number> {
    const { shadowSince, verify } = record.state;
    if (record.phase !== 'shadow_read' || shadowSince === undefined) return 0;
    const cleared = verify && verify.unrepaired === 0 ? verify.finishedAt : 0;
    return (await this.context.store.mismatchesSince(this.name, Math.max(shadowSince, cleared))).length;
  }

  /**
   * Runs `work` holding the migration's advisory lock (MigrationLockedError if another runner
   * holds it), as background traffic: it queues behind the application's queries and is shed first.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return withScope({ priority: 'background', purpose: this.context.switchesTopology ? 'rebalance' : 'backfill' }, () => this.locked(work));
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await this.context.store.ensureTables();
    const lockId = (await loadKeyHasher()).hash64Signed(`shardkit-online-migration:${this.name}`);
    const release: ReleaseLock | undefined = await this.context.locks.tryLock(this.context.lockDb, lockId);
    if (!release) throw new MigrationLockedError(this.context.title);
    try {
      return await work();
    } finally {
      await release();
    }
  }
}

interface OutboxBacklog {
  shard: string;
  /** NaN when the shard could not be read. */
  entries: number;
  error?: unknown;
}

function outboxReasons(backlog: readonly OutboxBacklog[]): string[] {
  return backlog.map(({ shard, entries, error }) =>
    Number.isNaN(entries)
      ? `the sync outbox on ${shard} cannot be read: ${errorText(error)}`
      : `${entries} committed writes on ${shard} wait in the sync outbox${error ? ` (draining failed: ${errorText(error)})` : ''}`,
  );
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}

/** Why live instances hold a step back: each one that does not apply `version` yet. */
function instancesBehind(instances: readonly InstanceAck[], version: number): string[] {
  return instances
    .filter((instance) => instance.version !== version)
    .map((instance) => `instance ${instance.instance} still applies version ${instance.version}, not ${version}`);
}
