/**
 * Measures every replica's lag in the background. Per shard with replicas, every `intervalMs`:
 * read the primary's position and clock, then probe the replicas that need it for their applied
 * position, their newest heartbeat and whether they replicate (see lag-reading.ts).
 *
 * A replica needs a probe when the primary has moved past the position it was last seen at, when
 * its last reading proves nothing, or at least every `idleProbeMs`. A caught-up replica of an
 * idle primary is not asked again each cycle: each new sighting of the primary at the position it
 * has applied makes it fresh as of that sighting (position-history.ts). So an idle replica is
 * known fresh to within one interval at the cost of one small read of the primary per interval
 * (no write) and one replica probe per `idleProbeMs`.
 *
 * The heartbeat row is written where positions say nothing (MySQL: every cycle), and otherwise at
 * most once per `HEARTBEAT_EVERY_MS` while a replica has stayed behind the primary's newest
 * position that long: it bounds the lag of a replica further behind than the position history,
 * and moves the position on for one that cannot reach it otherwise. A shard whose replicas keep
 * up sees no write from here.
 *
 * Cost is bounded: one cycle per shard at a time, the next scheduled only after the last ends,
 * each call limited to `timeoutMs` and never issued while an earlier one to the same node still
 * hangs. Calls go through the node's gate as health probes (no admission, never shed, but
 * bounded by `timeoutMs`), so a replica that refuses connections opens its breaker, is skipped
 * while open and is tried again (half-open) by a later probe.
 */
import { withScope } from '../access/call-scope.js';
import type { LagMonitorOptions } from '../config/config-types.js';
import type { ReplicationSignals } from '../dialect/dialect-adapter.js';
import type { NodeHandle, ShardHandle } from '../topology/topology.js';
import { SingleFlight } from '../util/single-flight-timeout.js';
import { type LagReading, type PrimaryObservation, readingFrom, readingSinceLastProof, readingWhilePrimaryDown, unknownReading } from './lag-reading.js';
import { PositionHistory } from './position-history.js';

/** How often, at most, a heartbeat is written while a replica lags behind positions it can be measured by. */
const HEARTBEAT_EVERY_MS = 1000;
/** How long the primary's positions are remembered: replicas further behind have no position proof. */
const HISTORY_MS = 120_000;

export class LagMonitor {
  private readonly readings = new Map<string, LagReading>();
  /**
   * Per replica: its latest reading with a proof of freshness. A probe that fails while the
   * primary dies (its connection reset before it refuses new ones) must not erase that proof.
   */
  private readonly lastProof = new Map<string, LagReading>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly cycles = new Set<Promise<void>>();
  private readonly flights = new SingleFlight();
  private readonly heartbeatTables = new Set<string>();
  private readonly cycleListeners = new Set<() => void>();
  private readonly cycleObservers = new Set<(shard: ShardHandle) => void>();
  /** Per shard: since when its primary refuses connections (see lag-reading.ts on why that matters). */
  private readonly primaryDownSince = new Map<string, number>();
  private readonly histories = new Map<string, PositionHistory>();
  /** Per shard: when its heartbeat was last written. */
  private readonly heartbeatAt = new Map<string, number>();
  /** Per replica: since when its probes find it behind the primary's newest position. */
  private readonly behindSince = new Map<string, number>();
  private stopped = false;
  private probeCount = 0;
  private primaryReadCount = 0;

  constructor(
    private readonly shards: readonly ShardHandle[],
    private readonly options: Required<LagMonitorOptions>,
  ) {}

  start(): void {
    for (const shard of this.shards) {
      if (shard.replicas.length > 0 && shard.primary.dialect.replication) this.schedule(shard, 0);
    }
  }

  reading(node: NodeHandle): LagReading | undefined {
    return this.readings.get(node.config.name);
  }

  /** The newest position `shard`'s primary was seen at: everything it holds now includes it. Undefined where it is not read (no replicas, PGlite). */
  primaryPosition(shard: string): string | undefined {
    return this.histories.get(shard)?.newest?.position;
  }

  /** Replica probes made so far (for the monitor's cost in benchmarks and status). */
  get probes(): number {
    return this.probeCount;
  }

  /** Reads of a primary's position made so far (a small read each, no write). */
  get primaryReads(): number {
    return this.primaryReadCount;
  }

  /** Calls `observer` after every probe cycle of a shard, until the returned function is called. */
  observeCycles(observer: (shard: ShardHandle) => void): () => void {
    this.cycleObservers.add(observer);
    return () => this.cycleObservers.delete(observer);
  }

  /** Resolves when the next probe cycle of any shard ends, or after `timeoutMs`. */
  nextCycle(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.cycleListeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.cycleListeners.add(done);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(this.cycles);
    for (const listener of [...this.cycleListeners]) listener();
  }

  private schedule(shard: ShardHandle, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const started = Date.now();
      const cycle = this.cycle(shard).finally(() => {
        this.cycles.delete(cycle);
        this.schedule(shard, this.options.intervalMs - (Date.now() - started));
      });
      this.cycles.add(cycle);
    }, Math.max(0, delayMs));
    timer.unref();
    this.timers.add(timer);
  }

  private async cycle(shard: ShardHandle): Promise<void> {
    const signals = shard.primary.dialect.replication!;
    const asked = Date.now();
    const primary = await this.observePrimary(shard, signals).then(
      (observed) => {
        this.primaryDownSince.delete(shard.name);
        return observed;
      },
      (error: unknown) => {
        if (!isDown(error, this.primaryDownSince.has(shard.name))) this.primaryDownSince.delete(shard.name);
        else if (!this.primaryDownSince.has(shard.name)) this.primaryDownSince.set(shard.name, asked);
        return undefined;
      },
    );
    const history = this.historyOf(shard);
    if (primary?.position !== undefined) history.record(primary.position, primary.sentAt);
    const downSince = this.primaryDownSince.get(shard.name);
    await Promise.all(
      shard.replicas.map((replica) =>
        primary && this.extendProof(replica, history, signals) ? undefined : this.probeReplica(replica, primary, history, signals, downSince),
      ),
    );
    for (const observer of this.cycleObservers) observer(shard);
    for (const listener of [...this.cycleListeners]) listener();
  }

  private historyOf(shard: ShardHandle): PositionHistory {
    const known = this.histories.get(shard.name);
    if (known) return known;
    const history = new PositionHistory(HISTORY_MS);
    this.histories.set(shard.name, history);
    return history;
  }

  private async observePrimary(shard: ShardHandle, signals: ReplicationSignals): Promise<PrimaryObservation> {
    const { heartbeatTable, timeoutMs } = this.options;
    const node = shard.primary;
    const call = <T>(work: () => Promise<T>) => this.flights.run(node.config.name, timeoutMs, () => this.probe(work));
    // Replica probes read the heartbeat table: it exists before the first of them.
    if (!this.heartbeatTables.has(shard.name)) {
      await call(() => signals.ensureHeartbeatTable(node.knex, heartbeatTable));
      this.heartbeatTables.add(shard.name);
    }
    const sentAt = Date.now();
    this.primaryReadCount++;
    const state = await call(() => signals.primaryState(node.knex));
    if (this.needsHeartbeat(shard, state.position)) {
      // After reading the position, so that a replica that has applied it is fresh as of sentAt.
      await call(() => signals.writeHeartbeat(node.knex, heartbeatTable));
      this.heartbeatAt.set(shard.name, Date.now());
    }
    return { ...state, sentAt };
  }

  /** Whether to write the heartbeat: always where positions are not read (MySQL); elsewhere once a replica has stayed behind for HEARTBEAT_EVERY_MS, and at most that often. */
  private needsHeartbeat(shard: ShardHandle, position: string | undefined): boolean {
    if (position === undefined) return true;
    const now = Date.now();
    if (now - (this.heartbeatAt.get(shard.name) ?? 0) < HEARTBEAT_EVERY_MS) return false;
    return shard.replicas.some((replica) => now - (this.behindSince.get(replica.config.name) ?? now) >= HEARTBEAT_EVERY_MS);
  }

  /**
   * A replica proven fresh at its last probe, whose applied position the primary has not moved
   * past since: fresh as of this sighting of the primary, without a probe. False when it needs one.
   */
  private extendProof(replica: NodeHandle, history: PositionHistory, signals: ReplicationSignals): boolean {
    const reading = this.readings.get(replica.config.name);
    const newest = history.newest;
    if (reading?.freshAsOf === undefined || reading.position === undefined || reading.problem !== undefined || !newest) return false;
    if (Date.now() - reading.measuredAt >= this.options.idleProbeMs) return false;
    if (!signals.reached(reading.position, newest.position)) return false;
    const extended = { ...reading, freshAsOf: Math.max(reading.freshAsOf, newest.lastSeenAt) };
    this.readings.set(replica.config.name, extended);
    this.lastProof.set(replica.config.name, extended);
    return true;
  }

  private async probeReplica(
    replica: NodeHandle,
    primary: PrimaryObservation | undefined,
    history: PositionHistory,
    signals: ReplicationSignals,
    primaryDownSince: number | undefined,
  ) {
    const measuredAt = Date.now();
    try {
      const state = await this.flights.run(replica.config.name, this.options.timeoutMs, () =>
        this.probe(() => signals.replicaState(replica.knex, this.options.heartbeatTable)),
      );
      const proof = this.lastProof.get(replica.config.name);
      const reading =
        primary !== undefined
          ? readingFrom(history, primary, state, measuredAt, signals.reached)
          : primaryDownSince !== undefined
            ? readingWhilePrimaryDown(proof, state, measuredAt, primaryDownSince)
            : readingSinceLastProof(proof, state, measuredAt);
      this.readings.set(replica.config.name, reading);
      if (reading.freshAsOf !== undefined) this.lastProof.set(replica.config.name, reading);
      const newest = history.newest;
      const behind = reading.position !== undefined && newest !== undefined && !signals.reached(reading.position, newest.position);
      if (!behind) this.behindSince.delete(replica.config.name);
      else if (!this.behindSince.has(replica.config.name)) this.behindSince.set(replica.config.name, measuredAt);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.readings.set(replica.config.name, unknownReading(measuredAt, `probe failed: ${reason}`));
    } finally {
      this.probeCount++;
    }
  }

  private probe<T>(work: () => Promise<T>): Promise<T> {
    return withScope({ priority: 'health', timeoutMs: this.options.timeoutMs, purpose: 'lag-probe' }, work);
  }
}

/**
 * Proof that a primary cannot commit: its server refused the connection, or is shutting down or
 * starting up. While it stays down its breaker opens, which continues the outage already proven.
 */
function isDown(error: unknown, alreadyDown: boolean): boolean {
  const failure = error as { code?: unknown; driverCode?: unknown; cause?: unknown };
  if (failure?.code === 'SHARD_UNAVAILABLE') return alreadyDown;
  const driverCode = failure?.driverCode ?? (failure?.cause as { code?: unknown } | undefined)?.code;
  return driverCode === 'ECONNREFUSED' || driverCode === '57P03' || driverCode === 'ER_SERVER_SHUTDOWN';
}
