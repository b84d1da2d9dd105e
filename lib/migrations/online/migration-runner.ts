/**
 * Drives one online migration through its phases (see phases.ts). Every command takes the
 * migration's advisory lock on the control database first, so two runners never drive one
 * migration; phase changes are compare-and-set on the version, and each is checked against its
 * gate first:
 *
 *   any advance        every live instance has acknowledged the current phase
 *   backfill -> verify every source shard's backfill is done
 *   verify -> shadow   a verify ran in this phase and left no unrepaired difference
 *   shadow -> cutover  no more shadow mismatches than allowed since shadow_read began, and the
 *                      verify is still clean
 *
 * Rollback moves one phase back (not from cleanup). Cleanup, once reached, can retire the old
 * table (rename, or drop) only when told so explicitly.
 */
import type { ThrottleEvent } from '../../observability/state-events.js';
import type { Knex } from 'knex';
import type { AdvisoryLocks, ReleaseLock } from '../../dialect/advisory-locks.js';
import { MigrationGateError, MigrationLockedError } from '../../errors.js';
import { loadKeyHasher } from '../../hashing/key-hasher.js';
import type { Topology } from '../../topology/topology.js';
import { type BackfillOptions, backfillShard, countSourceRows } from './backfill.js';
import type { BackfillCheckpoint, ControlStore, InstanceAck, MigrationRecord, MigrationState, VerifyReport } from './control-store.js';
import type { MigrationCoordinator } from './migration-coordinator.js';
import type { MigrationTables } from './migration-tables.js';
import { nextPhase, type Phase, previousPhase } from './phases.js';
import { type VerifyOptions, verifyMigration } from './verify.js';

export interface RunnerContext {
  topology: Topology;
  store: ControlStore;
  coordinator: MigrationCoordinator;
  tables: MigrationTables;
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
    return this.context.tables.migration.name;
  }

  async status(): Promise<MigrationStatus> {
    const record = await this.context.store.getOrCreate(this.name);
    const instances = await this.context.store.liveInstances(this.name);
    const mismatches = await this.shadowMismatches(record);
    const next = nextPhase(record.phase);
    return {
      name: this.name,
      phase: record.phase,
      version: record.version,
      next,
      blockedBy: next ? this.gate(record, next, instances, mismatches) : ['the migration is finished'],
      instances: instances.map((instance) => ({ ...instance, current: instance.version === record.version })),
      backfill: this.context.tables.shardsOf('source').map((shard) => ({ shard, ...(record.state.backfill[shard] ?? { lastKey: null, rows: 0, done: false }) })),
      verify: record.state.verify,
      shadowMismatches: mismatches,
    };
  }

  /** pending -> dual_write. */
  start(): Promise<MigrationRecord> {
    return this.locked(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      if (record.phase !== 'pending') return record;
      return this.transition(record, 'dual_write');
    });
  }

  /** One phase forward, if its gate is open; `waitForAcksMs` waits that long for instances to catch up. */
  advance(options: { waitForAcksMs?: number } = {}): Promise<MigrationRecord> {
    return this.locked(async () => {
      const deadline = Date.now() + (options.waitForAcksMs ?? 0);
      for (;;) {
        const record = await this.context.store.getOrCreate(this.name);
        const next = nextPhase(record.phase);
        if (!next) throw new MigrationGateError(this.name, 'a next phase', ['the migration is finished']);
        const instances = await this.context.store.liveInstances(this.name);
        const reasons = this.gate(record, next, instances, await this.shadowMismatches(record));
        if (reasons.length === 0) return this.transition(record, next);
        const waitingOnAcks = reasons.every((reason) => reason.startsWith('instance'));
        if (!waitingOnAcks || Date.now() >= deadline) throw new MigrationGateError(this.name, next, reasons);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
  }

  /** One phase back; every write so far is in both tables, so nothing is lost. */
  rollback(): Promise<MigrationRecord> {
    return this.locked(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      const previous = previousPhase(record.phase);
      if (!previous) throw new MigrationGateError(this.name, 'a previous phase', [`cannot roll back from ${record.phase}`]);
      return this.transition(record, previous);
    });
  }

  /** Copies the remaining source rows (resuming from each shard's checkpoint); phase backfill only. */
  backfill(options: BackfillOptions & { maxLagMs?: number } = {}): Promise<MigrationRecord> {
    return this.locked(async () => {
      let record = await this.context.store.getOrCreate(this.name);
      if (record.phase !== 'backfill') throw new MigrationGateError(this.name, 'backfill', [`the migration is in ${record.phase}, not backfill`]);
      const state: MigrationState = structuredClone(record.state);
      let saving = Promise.resolve();
      const save = (shard: string, checkpoint: BackfillCheckpoint) => {
        state.backfill[shard] = checkpoint;
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
      const hooks = { save, throttle };
      const { topology, tables } = this.context;
      const shards = tables.shardsOf('source').map((shard) => ({ shard, start: state.backfill[shard] ?? { lastKey: null, rows: 0, done: false } }));
      const totals = await Promise.all(shards.map(({ shard }) => countSourceRows(topology, tables, shard)));
      for (const [index, { shard, start }] of shards.entries()) options.onProgress?.({ shard, copied: start.rows, total: totals[index]!, done: start.done });
      await Promise.all(shards.map(({ shard, start }, index) => backfillShard(topology, tables, shard, start, totals[index]!, hooks, options)));
      await saving;
      return record;
    });
  }

  /** Compares and repairs; the report gates cutover. From phase verify on. */
  verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    return this.locked(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      if (!['verify', 'shadow_read', 'cutover'].includes(record.phase)) {
        throw new MigrationGateError(this.name, 'verify', [`the migration is in ${record.phase}; verify runs from phase verify on`]);
      }
      const outcome = await verifyMigration(this.context.topology, this.context.tables, options);
      const report: VerifyReport = { version: record.version, ...outcome, finishedAt: Date.now() };
      await this.context.store.saveState(record, { ...record.state, verify: report });
      return report;
    });
  }

  /** In phase cleanup: retires the old table on every shard (only with `yes`; `dryRun` only says what it would do). */
  cleanup(options: CleanupOptions = {}): Promise<string[]> {
    return this.locked(async () => {
      const record = await this.context.store.getOrCreate(this.name);
      if (record.phase !== 'cleanup') throw new MigrationGateError(this.name, 'cleanup', [`advance to cleanup first (now ${record.phase})`]);
      const source = this.context.tables.tableOf('source');
      const retired = `${source}_retired_${new Date(record.updatedAt).toISOString().slice(0, 10).replaceAll('-', '')}`;
      const action = options.action ?? 'rename';
      const shards = this.context.tables.shardsOf('source');
      const plan = shards.map((shard) => (action === 'drop' ? `drop table ${source} on ${shard}` : `rename table ${source} to ${retired} on ${shard}`));
      if (options.dryRun || !options.yes) return plan.map((step) => `would ${step}`);
      for (const shard of shards) {
        const db = this.context.topology.shard(shard).primary.knex;
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
    return this.locked(async () => {
      const record = await this.context.store.get(this.name);
      if (record && record.phase !== 'pending' && record.phase !== 'cleanup') {
        throw new MigrationGateError(this.name, 'forget', [`it is in ${record.phase}: roll back to pending or finish it first`]);
      }
      await this.context.store.remove(this.name);
      await this.context.coordinator.refresh();
    });
  }

  private gate(record: MigrationRecord, next: Phase, instances: readonly InstanceAck[], mismatches: number): string[] {
    const reasons = instances
      .filter((instance) => instance.version !== record.version)
      .map((instance) => `instance ${instance.instance} still applies version ${instance.version}, not ${record.version}`);
    const state = record.state;
    if (next === 'verify') {
      const pending = this.context.tables.shardsOf('source').filter((shard) => !state.backfill[shard]?.done);
      if (pending.length > 0) reasons.push(`the backfill is not done on ${pending.join(', ')}`);
    }
    if (next === 'shadow_read' || next === 'cutover') {
      if (!state.verify) reasons.push('no verify has run in this phase: run verify');
      else if (state.verify.unrepaired > 0) reasons.push(`the last verify left ${state.verify.unrepaired} differences unrepaired`);
    }
    if (next === 'cutover') {
      const allowed = this.context.tables.migration.allowedShadowMismatches ?? 0;
      if (mismatches > allowed) reasons.push(`${mismatches} shadow-read mismatches since shadow_read began (allowed ${allowed})`);
    }
    return reasons;
  }

  private async transition(record: MigrationRecord, phase: Phase): Promise<MigrationRecord> {
    const state: MigrationState = { ...record.state };
    // A verify counts for the phase it ran in; a new phase (either way) asks for a fresh one,
    // except shadow_read, whose gate reuses the verify that let it open.
    if (phase === 'verify') delete state.verify;
    if (phase === 'shadow_read') state.shadowSince = Date.now();
    const moved = await this.context.store.transition(record, phase, state);
    await this.context.coordinator.refresh();
    return moved;
  }

  private async shadowMismatches(record: MigrationRecord): Promise<number> {
    if (record.phase !== 'shadow_read' || record.state.shadowSince === undefined) return 0;
    return (await this.context.store.mismatchesSince(this.name, record.state.shadowSince)).length;
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await this.context.store.ensureTables();
    const lockId = (await loadKeyHasher()).hash64Signed(`shardkit-online-migration:${this.name}`);
    const release: ReleaseLock | undefined = await this.context.locks.tryLock(this.context.lockDb, lockId);
    if (!release) throw new MigrationLockedError(this.name);
    try {
      return await work();
    } finally {
      await release();
    }
  }
}
