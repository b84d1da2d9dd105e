/**
 * Primary failover for shards that list `failoverCandidates` (docs/failover.md):
 *
 *   unplanned  a call to the primary fails in a way a new primary could explain (refused,
 *              dropped, breaker open, a write refused as read-only). Primary calls are held
 *              (topology/shard-primary.ts) while every `probeIntervalMs` the candidates and the
 *              primary are asked their role. The first candidate that says it takes writes (it
 *              was promoted: `pg_ctl promote`, or a MariaDB replica made writable with its
 *              replication stopped) becomes the primary and the old one is fenced; the switch is
 *              recorded in the control database. If the old primary answers as a primary first,
 *              nothing switches. After `holdMs` without either, held calls fail as before.
 *   recorded   every `pollIntervalMs` the records are read: a switch another instance made is
 *              followed here too, so that no instance writes to a demoted primary that came back.
 *   planned    `failover(shard, to)`: hold, let calls in flight end, fence the old primary (its
 *              sessions end and it refuses this application's writes), wait until the
 *              candidate has applied everything the old primary had, promote it, switch.
 *
 * shardkit never promotes on its own when a primary fails: deciding that a primary is dead is
 * the operator's or the orchestrator's call (a network partition looks the same from here).
 */
import { withScope } from '../access/call-scope.js';
import type { ResolvedConfig } from '../config/config-types.js';
import type { ReplicationSignals, ServerRole } from '../dialect/dialect-adapter.js';
import { FailoverError } from '../errors.js';
import { pruneMarkers } from '../engine/write-markers.js';
import type { Hold } from '../topology/shard-primary.js';
import type { NodeHandle, ShardPrimary, Topology } from '../topology/topology.js';
import type { PrimaryRecords } from './primary-records.js';

/** What `kit.on('failover', ...)` receives: a switch began, ended with a new primary, or ended without one. */
export interface FailoverEvent {
  shard: string;
  /** holding: calls are held; switched: `to` is the primary; resumed: the old primary answers again; gave-up: none within the window. */
  stage: 'holding' | 'switched' | 'resumed' | 'gave-up';
  from: string;
  to?: string;
  /** unplanned (a failure seen here), recorded (another instance's switch), planned (kit.failover()). */
  cause: 'unplanned' | 'recorded' | 'planned';
  /** For a switch that ended: how long calls were held. */
  heldMs?: number;
  reason?: string;
  /** The switch could not be recorded in the control database (other instances find it themselves). */
  recordError?: string;
}

export interface PlannedFailover {
  /** How long the whole switch may take; calls are held meanwhile. Default 30000. */
  timeoutMs?: number;
}

/** How often markers of writes past repeating are deleted (write-markers.ts). */
const PRUNE_EVERY_MS = 5 * 60_000;

export class PrimaryFailover {
  private poller: NodeJS.Timeout | undefined;
  private pruner: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly switches = new Set<Promise<unknown>>();
  /** Per shard: the epoch of the last record followed, so that a record read before a newer switch is not applied after it. */
  private readonly followed = new Map<string, number>();

  constructor(
    private readonly topology: Topology,
    private readonly options: ResolvedConfig['failover'],
    private readonly parts: { controlShard: string; heartbeatTable: string; records: PrimaryRecords },
    private readonly emit: (event: FailoverEvent) => void,
  ) {
    for (const primary of this.switchable()) primary.onSuspicion((shard, node, error) => this.suspect(shard, node, error));
  }

  /** Follows the recorded switches, then keeps reading them. Nothing to do without candidates. */
  async start(): Promise<void> {
    if (this.switchable().length === 0) return;
    await this.follow();
    const poll = () => {
      this.poller = setTimeout(async () => {
        await this.follow().catch(() => undefined);
        if (!this.stopped) poll();
      }, this.options.pollIntervalMs);
      this.poller.unref();
    };
    poll();
    this.pruner = setInterval(() => {
      for (const primary of this.switchable()) {
        void withScope({ priority: 'background', purpose: 'failover' }, () => pruneMarkers(primary.node)).catch(() => undefined);
      }
    }, PRUNE_EVERY_MS);
    this.pruner.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.poller);
    clearInterval(this.pruner);
    await Promise.allSettled([...this.switches]);
  }

  /** A planned switch of `shardName`'s primary to `to`: a candidate, or the configured primary rebuilt as a replica. */
  failover(shardName: string, to: string, options: PlannedFailover = {}): Promise<FailoverEvent> {
    const planned = this.planned(shardName, to, options.timeoutMs ?? 30_000);
    this.track(planned);
    return planned;
  }

  private async planned(shardName: string, to: string, timeoutMs: number): Promise<FailoverEvent> {
    const primary = this.topology.shard(shardName).failover;
    const target = [primary.configured, ...primary.candidates].find((node) => node.config.name === to);
    if (!target) throw new FailoverError(shardName, to, `not one of its failover candidates (${primary.candidates.map((node) => node.config.name).join(', ') || 'none'})`);
    if (target === primary.node) throw new FailoverError(shardName, to, 'it is the primary already');
    const signals = replicationOf(target);
    const started = performance.now();
    const deadline = started + timeoutMs;
    // Before anything is held or fenced: the target must be a replica that replicates.
    const state = await this.scoped(deadline, () => signals.replicaState(target.knex, this.parts.heartbeatTable)).catch((error: unknown) => error as Error);
    if (state instanceof Error || !state.replicating) {
      throw new FailoverError(shardName, to, `it is not a replica that replicates now (${state instanceof Error ? state.message : (state.problem ?? 'not replicating')})`);
    }
    const hold = primary.beginSwitch(timeoutMs);
    if (!hold) throw new FailoverError(shardName, to, 'another switch of this shard is under way');
    const old = primary.node;
    this.emit({ shard: shardName, stage: 'holding', from: old.config.name, to, cause: 'planned' });
    let fenced = false;
    let promoted = false;
    try {
      await waitFor(() => old.gate.inFlight === 0, deadline, 'calls in flight on the old primary did not end');
      fenced = true;
      await this.scoped(deadline, () => signals.fence(old.knex));
      const position = await this.scoped(deadline, () => signals.finalPosition(old.knex));
      if (position !== undefined) {
        await waitFor(
          async () => {
            const applied = (await this.scoped(deadline, () => signals.replicaState(target.knex, this.parts.heartbeatTable))).position;
            return applied !== undefined && signals.reached(applied, position);
          },
          deadline,
          `${to} did not apply the old primary's last position ${position}`,
        );
      }
      promoted = true;
      await this.scoped(deadline, () => signals.promote(target.knex));
      await waitFor(async () => (await this.roleOf(target)) === 'primary', deadline, `${to} does not take writes after its promotion`);
    } catch (error) {
      // Once promotion was asked for, the old primary stays fenced whatever happens: two
      // writable primaries are worse than none. Calls fail on it until the candidate answers.
      if (fenced && !promoted) await this.scoped(performance.now() + 5000, () => signals.unfence(old.knex)).catch(() => undefined);
      primary.endSwitch(hold);
      const reason = `${(error as Error).message}${promoted ? ` (promotion of ${to} was requested: ${old.config.name} stays fenced; shardkit follows ${to} once it takes writes)` : ''}`;
      this.emit({ shard: shardName, stage: 'gave-up', from: old.config.name, to, cause: 'planned', heldMs: performance.now() - started, reason });
      throw new FailoverError(shardName, to, reason, error);
    }
    return this.switched(primary, hold, target, 'planned', started, old);
  }

  private switchable(): ShardPrimary[] {
    return this.topology.shards.map((shard) => shard.failover).filter((primary) => primary.canSwitch);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.catch(() => undefined).finally(() => this.switches.delete(tracked));
    this.switches.add(tracked);
  }

  private suspect(primary: ShardPrimary, node: NodeHandle, error: unknown): void {
    if (this.stopped) return;
    const hold = primary.beginSwitch();
    if (!hold) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.emit({ shard: primary.shard, stage: 'holding', from: node.config.name, cause: 'unplanned', reason });
    // Its own scope: the watch must not inherit the deadline or signal of the call that failed.
    this.track(withScope({ priority: 'critical', purpose: 'failover' }, () => this.watch(primary, hold, node, reason)));
  }

  /**
   * Asks the roles until a candidate was promoted, the old primary answers as one while every
   * candidate says it is a replica, or the window passes.
   */
  private async watch(primary: ShardPrimary, hold: Hold, old: NodeHandle, reason: string): Promise<void> {
    const started = performance.now();
    const current = () => primary.holds(hold);
    while (!this.stopped && current() && performance.now() - started < this.options.holdMs) {
      const candidates = primary.candidates.filter((node) => node !== old && !primary.isFenced(node));
      const [oldRole, ...roles] = await Promise.all([old, ...candidates].map((node) => this.roleOf(node)));
      const promoted = candidates.find((_, index) => roles[index] === 'primary');
      if (promoted) {
        await this.switched(primary, hold, promoted, 'unplanned', started, old);
        return;
      }
      if (oldRole === 'primary' && roles.every((role) => role === 'replica')) {
        primary.endSwitch(hold, true);
        this.emit({ shard: primary.shard, stage: 'resumed', from: old.config.name, cause: 'unplanned', heldMs: performance.now() - started, reason });
        return;
      }
      await pause(this.options.probeIntervalMs);
    }
    if (!current()) return;
    primary.endSwitch(hold);
    this.emit({ shard: primary.shard, stage: 'gave-up', from: old.config.name, cause: 'unplanned', heldMs: performance.now() - started, reason });
  }

  /**
   * `to` is the primary. The switch is recorded first, so that no instance can read an older
   * record after this one switched; when the shard is the control shard itself, the record can
   * only be written to the new primary, after the switch.
   */
  private async switched(primary: ShardPrimary, hold: Hold, to: NodeHandle, cause: FailoverEvent['cause'], started: number, old: NodeHandle): Promise<FailoverEvent> {
    const record = () =>
      this.scoped(performance.now() + RECORD_TIMEOUT_MS, () => this.parts.records.record(primary.shard, to.config.name, to.config.description)).then(
        (written) => {
          this.followed.set(primary.shard, Math.max(written.epoch, this.followed.get(primary.shard) ?? 0));
          return undefined;
        },
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
    const ownControl = primary.shard === this.parts.controlShard;
    const before = ownControl ? undefined : await record();
    primary.switchTo(to, hold);
    const recordError = ownControl ? await record() : before;
    const event: FailoverEvent = { shard: primary.shard, stage: 'switched', from: old.config.name, to: to.config.name, cause, heldMs: performance.now() - started, ...(recordError ? { recordError } : {}) };
    this.emit(event);
    return event;
  }

  /** Follows switches recorded by other instances (or by this one before a restart). */
  private async follow(): Promise<void> {
    const records = await withScope({ priority: 'critical', timeoutMs: this.options.pollIntervalMs * 5, purpose: 'failover' }, () => this.parts.records.all());
    for (const record of records) {
      const primary = this.topology.shards.find((shard) => shard.name === record.shard)?.failover;
      // A shard switching now is left to its switch; a record no newer than one followed is old news.
      if (!primary?.canSwitch || primary.switching || record.epoch <= (this.followed.get(record.shard) ?? 0)) continue;
      this.followed.set(record.shard, record.epoch);
      const node = [primary.configured, ...primary.candidates].find((candidate) => candidate.config.description === record.address);
      if (!node || node === primary.node) continue;
      const from = primary.node.config.name;
      if (primary.switchTo(node)) this.emit({ shard: record.shard, stage: 'switched', from, to: record.node, cause: 'recorded' });
    }
  }

  /** What a node says it is; a node that does not answer is not known to be anything. */
  private roleOf(node: NodeHandle): Promise<ServerRole | undefined> {
    const timeoutMs = Math.max(250, Math.min(1000, this.options.probeIntervalMs * 5));
    return withScope({ priority: 'health', timeoutMs, purpose: 'failover' }, () => replicationOf(node).role(node.knex)).catch(() => undefined);
  }

  private scoped<T>(deadline: number, work: () => Promise<T>): Promise<T> {
    return withScope({ priority: 'critical', deadline, purpose: 'failover' }, work);
  }
}

const RECORD_TIMEOUT_MS = 5000;

function replicationOf(node: NodeHandle): ReplicationSignals {
  const signals = node.dialect.replication;
  if (!signals) throw new FailoverError(node.config.shard, node.config.name, `${node.config.dialect} has no replication`);
  return signals;
}

async function waitFor(condition: () => boolean | Promise<boolean>, deadline: number, failure: string): Promise<void> {
  while (!(await condition())) {
    if (performance.now() >= deadline) throw new Error(failure);
    await pause(20);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
