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

export class PrimaryFailover {
  private poller: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly switches = new Set<Promise<void>>();

  constructor(
    private readonly topology: Topology,
    private readonly options: ResolvedConfig['failover'],
    private readonly heartbeatTable: string,
    private readonly records: PrimaryRecords,
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
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.poller);
    for (const primary of this.switchable()) primary.endSwitch();
    await Promise.allSettled([...this.switches]);
  }

  /** A planned switch of `shardName`'s primary to the candidate `to`. */
  async failover(shardName: string, to: string, options: PlannedFailover = {}): Promise<FailoverEvent> {
    const primary = this.topology.shard(shardName).failover;
    // Back to the configured primary too, once it was rebuilt as a replica: the catch-up check refuses one that is not.
    const target = [primary.configured, ...primary.candidates].find((node) => node.config.name === to);
    if (!target) throw new FailoverError(shardName, to, `not one of its failover candidates (${primary.candidates.map((node) => node.config.name).join(', ') || 'none'})`);
    if (target === primary.node) throw new FailoverError(shardName, to, 'it is the primary already');
    const signals = replicationOf(target);
    if (!primary.beginSwitch()) throw new FailoverError(shardName, to, 'another switch of this shard is under way');
    const old = primary.node;
    const started = performance.now();
    const deadline = started + (options.timeoutMs ?? 30_000);
    this.emit({ shard: shardName, stage: 'holding', from: old.config.name, to, cause: 'planned' });
    let fenced = false;
    try {
      await waitFor(() => old.gate.inFlight === 0, deadline, 'calls in flight on the old primary did not end');
      await this.scoped(deadline, () => signals.fence(old.knex));
      fenced = true;
      const { position } = await this.scoped(deadline, () => signals.primaryState(old.knex));
      if (position !== undefined) {
        await waitFor(
          async () => {
            const state = await this.scoped(deadline, () => signals.replicaState(target.knex, this.heartbeatTable));
            return state.position !== undefined && signals.reached(state.position, position);
          },
          deadline,
          `${to} did not apply the old primary's last position ${position}`,
        );
      }
      await this.scoped(deadline, () => signals.promote(target.knex));
      await waitFor(async () => (await this.roleOf(target)) === 'primary', deadline, `${to} does not take writes after its promotion`);
    } catch (error) {
      if (fenced) await this.scoped(performance.now() + 5000, () => signals.unfence(old.knex)).catch(() => undefined);
      primary.endSwitch();
      this.emit({ shard: shardName, stage: 'gave-up', from: old.config.name, to, cause: 'planned', heldMs: performance.now() - started, reason: (error as Error).message });
      throw error instanceof FailoverError ? error : new FailoverError(shardName, to, (error as Error).message, error);
    }
    // Named here: the switch may have been followed already from another instance's record.
    return this.switched(primary, target, 'planned', started, old);
  }

  private switchable(): ShardPrimary[] {
    return this.topology.shards.map((shard) => shard.failover).filter((primary) => primary.canSwitch);
  }

  private suspect(primary: ShardPrimary, node: NodeHandle, error: unknown): void {
    if (this.stopped || !primary.beginSwitch()) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.emit({ shard: primary.shard, stage: 'holding', from: node.config.name, cause: 'unplanned', reason });
    const watch = this.watch(primary, node, reason).finally(() => this.switches.delete(watch));
    this.switches.add(watch);
  }

  /** Asks the roles until a candidate was promoted, the primary answers again, or the window passes. */
  private async watch(primary: ShardPrimary, old: NodeHandle, reason: string): Promise<void> {
    const started = performance.now();
    while (!this.stopped && primary.switching && performance.now() - started < this.options.holdMs) {
      const promoted = await this.promotedCandidate(primary);
      if (promoted) {
        await this.switched(primary, promoted, 'unplanned', started);
        return;
      }
      if ((await this.roleOf(old)) === 'primary') {
        primary.endSwitch(true);
        this.emit({ shard: primary.shard, stage: 'resumed', from: old.config.name, cause: 'unplanned', heldMs: performance.now() - started, reason });
        return;
      }
      await pause(this.options.probeIntervalMs);
    }
    if (!primary.switching) return;
    primary.endSwitch();
    this.emit({ shard: primary.shard, stage: 'gave-up', from: old.config.name, cause: 'unplanned', heldMs: performance.now() - started, reason });
  }

  private async promotedCandidate(primary: ShardPrimary): Promise<NodeHandle | undefined> {
    const candidates = primary.candidates.filter((node) => node !== primary.node && !primary.isFenced(node));
    const roles = await Promise.all(candidates.map((node) => this.roleOf(node)));
    return candidates.find((_, index) => roles[index] === 'primary');
  }

  private async switched(primary: ShardPrimary, to: NodeHandle, cause: FailoverEvent['cause'], started: number, old = primary.node): Promise<FailoverEvent> {
    const from = old.config.name;
    primary.switchTo(to);
    // Recorded after the switch: when the shard is the control shard, the record goes to the new primary.
    const recordError = await this.records.record(primary.shard, to.config.name, to.config.description).then(
      () => undefined,
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    const event: FailoverEvent = { shard: primary.shard, stage: 'switched', from, to: to.config.name, cause, heldMs: performance.now() - started, ...(recordError ? { recordError } : {}) };
    this.emit(event);
    return event;
  }

  /** Follows switches recorded by other instances (or by this one before a restart). */
  private async follow(): Promise<void> {
    const records = await withScope({ priority: 'critical', timeoutMs: this.options.pollIntervalMs * 5, purpose: 'failover' }, () => this.records.all());
    for (const record of records) {
      const shard = this.topology.shards.find((candidate) => candidate.name === record.shard);
      const primary = shard?.failover;
      if (!primary?.canSwitch || primary.node.config.description === record.address) continue;
      const node = [primary.configured, ...primary.candidates].find((candidate) => candidate.config.description === record.address);
      if (!node) continue;
      const from = primary.node.config.name;
      primary.switchTo(node);
      this.emit({ shard: record.shard, stage: 'switched', from, to: record.node, cause: 'recorded' });
    }
  }

  /** What a node says it is; a node that does not answer is not a primary. */
  private roleOf(node: NodeHandle): Promise<ServerRole | undefined> {
    const timeoutMs = Math.max(250, Math.min(1000, this.options.probeIntervalMs * 5));
    return withScope({ priority: 'health', timeoutMs, purpose: 'failover' }, () => replicationOf(node).role(node.knex)).catch(() => undefined);
  }

  private scoped<T>(deadline: number, work: () => Promise<T>): Promise<T> {
    return withScope({ priority: 'critical', deadline, purpose: 'failover' }, work);
  }
}

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
