/**
 * Opens one node: its gate (breaker, admission, deadlines) and a knex instance whose client is
 * guarded by it (guarded-client.ts). Nothing connects here: a node that is down does not stop
 * a kit starting. Closing is bounded: calls still running get `closeMs` to finish, then their
 * connections are destroyed, and so is every socket the node still has (connecting ones too).
 */
import knexModule, { type Knex } from 'knex';
import type { ResolvedLoadShedding, ResolvedNode, TimeoutOptions } from '../config/config-types.js';
import type { DialectAdapter } from '../dialect/dialect-adapter.js';
import { dialectAdapter } from '../dialect/dialects.js';
import { quietKnexLog } from '../dialect/knex-log.js';
import { DriverMissingError, KitClosedError } from '../errors.js';
import { Admission, type AdmissionSubject } from '../resilience/admission.js';
import { AdaptiveLimit } from '../resilience/adaptive-limit.js';
import { type BreakerOptionsResolved, type BreakerState, NodeBreaker } from '../resilience/node-breaker.js';
import { guardedClient, retireConnections } from '../knex/guarded-client.js';
import { currentScope } from './call-scope.js';
import { type AdmissionVeto, NodeGate, type StatementEvent } from './node-gate.js';
import { SocketRegistry } from './socket-registry.js';

export interface NodeHandle {
  readonly config: ResolvedNode;
  /** The node's knex instance: every statement through it passes the gate. */
  readonly knex: Knex;
  readonly dialect: DialectAdapter;
  readonly gate: NodeGate;
  /** Connections opened before now are closed instead of handed out again (a replica promoted: knex/guarded-client.ts). */
  retireConnections(): void;
}

export interface NodeOptions {
  breaker: BreakerOptionsResolved;
  admission: ResolvedLoadShedding;
  timeouts: Required<TimeoutOptions>;
  onStatement: (event: StatementEvent) => void;
  onBreaker: (node: ResolvedNode, state: BreakerState) => void;
  /** Refuses calls before admission (the kit's degradation level). */
  veto?: AdmissionVeto;
}

interface OpenedNode extends NodeHandle {
  close(graceMs: number): Promise<void>;
}

export async function openNode(config: ResolvedNode, options: NodeOptions): Promise<OpenedNode> {
  const dialect = dialectAdapter(config.dialect);
  const sockets = new SocketRegistry();
  const { timeouts } = options;
  const subject = { shard: config.shard, node: config.name, role: config.role, description: config.description };
  const breaker = new NodeBreaker(subject, options.breaker, dialect.classifyError, (state) => options.onBreaker(config, state));
  let knex: Knex | undefined;
  const gate = new NodeGate(
    subject,
    breaker,
    admissionOf(subject, options.admission, dialect.poolSize(config)),
    timeouts,
    {
      classify: dialect.classifyError,
      destroy: (connection) => dialect.destroySocket(connection),
      cancel: (connection) => (dialect.cancellable && knex ? cancelWithin((knex.client as CancellingClient).cancelQuery(connection), timeouts.connectMs) : Promise.resolve()),
      onLost: onConnectionLost,
    },
    options.onStatement,
    options.veto,
  );
  const settings = await dialect.knexOptions(config, { sockets, connectMs: timeouts.connectMs });
  try {
    knex = knexModule.knex({
      ...settings.extra,
      client: guardedClient(settings.client, gate, currentScope, (connection) => dialect.destroySocket(connection), dialect.affectedRows) as unknown as typeof knexModule.Client,
      connection: settings.connection as Knex.StaticConnectionConfig,
      // The driver's own connect timeout (connectMs) fires first, with its own message.
      ...(settings.pool ? { pool: { ...settings.pool, acquireTimeoutMillis: timeouts.acquireMs, createTimeoutMillis: timeouts.connectMs + 1000 } } : {}),
      log: quietKnexLog,
    });
  } catch (error) {
    if (/Cannot find module|npm install/i.test(String((error as Error)?.message))) throw new DriverMissingError(config.dialect, dialect.driverPackages, error);
    throw error;
  }
  const opened = knex;
  return {
    config,
    dialect,
    gate,
    knex: opened,
    // Only a node that replicates is ever promoted; PGlite's one connection is its database.
    retireConnections: () => {
      if (dialect.replication) retireConnections(opened);
    },
    async close(graceMs) {
      gate.admission.close();
      const deadline = performance.now() + graceMs;
      while (gate.inFlight > 0 && performance.now() < deadline) await pause(20);
      gate.disposeAll(new KitClosedError());
      sockets.destroyAll();
      await Promise.race([opened.destroy().catch(() => undefined), pause(Math.max(0, deadline - performance.now()) + 100)]);
      sockets.destroyAll();
      breaker.shutdown();
    },
  };
}

/** pg's Client and mysql2's Connection emit 'end' when their socket closes and 'error' when it fails. */
function onConnectionLost(connection: unknown, lost: () => void): () => void {
  const emitter = connection as { once?: (event: string, listener: () => void) => void; off?: (event: string, listener: () => void) => void };
  if (typeof emitter.once !== 'function' || typeof emitter.off !== 'function') return () => undefined;
  emitter.once('end', lost);
  emitter.once('error', lost);
  return () => {
    emitter.off?.('end', lost);
    emitter.off?.('error', lost);
  };
}

interface CancellingClient {
  cancelQuery(connection: unknown): Promise<unknown>;
}

/** A cancel request is best effort: it must not outlive `ms`, nor keep the process alive. */
function cancelWithin(cancel: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    cancel.then(
      () => resolve(),
      () => resolve(),
    ).finally(() => clearTimeout(timer));
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** At most the pool's connections at once; with `adaptive`, as many of them as latency allows. */
function admissionOf(subject: AdmissionSubject, shedding: ResolvedLoadShedding, poolSize: number): Admission {
  const maxInFlight = Math.min(shedding.maxInFlight, poolSize);
  const { adaptive } = shedding;
  const limit = adaptive
    ? new AdaptiveLimit({ min: Math.min(adaptive.minInFlight, maxInFlight), max: maxInFlight, windowMs: adaptive.windowMs, minSamples: 10, tolerance: adaptive.tolerance })
    : undefined;
  return new Admission(subject, { maxInFlight, maxQueued: shedding.maxQueued }, limit);
}
