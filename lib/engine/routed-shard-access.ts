/**
 * The ShardAccess of a kit: writes go to the shard's primary, reads to the node the read router
 * picks (see replicas/read-router.ts). Every call passes through the node's guard (breaker,
 * in-flight count) and is reported to the query listener with the node that served it and the
 * lag assumed. A replica read that fails for a retryable reason (the replica went away, a query
 * cancelled by recovery) is repeated once on the primary: reads are safe to repeat.
 */
import type { NodeRole } from '../config/config-types.js';
import type { ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, bindToClient, type BuilderMethod } from '../planner/builder-internals.js';
import type { NodeChoice, ReadRouter } from '../replicas/read-router.js';
import type { ReadSession } from '../replicas/read-session.js';
import type { NodeGuards } from '../resilience/node-guards.js';
import type { NodeHandle, ShardHandle, Topology } from '../topology/topology.js';
import { asQueryFailure } from './query-failure.js';
import type { QueryIntent, ShardAccess, ShardRequest } from './shard-access.js';

/** What `kit.on('query', ...)` receives for every query a node ran. */
export interface QueryEvent {
  table: string;
  method: BuilderMethod;
  intent: QueryIntent;
  shard: string;
  node: string;
  role: NodeRole;
  /** For a replica: its assumed lag when chosen. */
  lagMs?: number;
  /** For a read that asked for a replica and got the primary: why. */
  fallback?: string;
  durationMs: number;
  /** The error code, when the query failed. */
  error?: string;
}

/** Where query events go; events are only built while someone listens. */
export interface QueryEventSink {
  listenerCount(event: 'query'): number;
  emit(event: 'query', payload: QueryEvent): boolean;
}

export class RoutedShardAccess implements ShardAccess {
  constructor(
    private readonly topology: Topology,
    private readonly guards: NodeGuards,
    private readonly router: ReadRouter,
    private readonly events: QueryEventSink,
  ) {}

  async run(shardName: string, request: ShardRequest, query: AnyQueryBuilder): Promise<unknown> {
    const shard = this.topology.shard(shardName);
    const { routing } = request;
    if (request.intent === 'write') {
      const result = await this.runOn(shard.primary, request, query, { node: shard.primary });
      if (routing.session) await this.recordPosition(shard, routing.session);
      return result;
    }
    const choice = await this.chooseReader(shard, request);
    if (choice.node === shard.primary) return this.runOn(shard.primary, request, query, choice);
    try {
      return await this.runOn(choice.node, request, query, choice);
    } catch (error) {
      if (!(error as ShardKitError).retryable) throw error;
      const fallback = `${choice.node.config.name} failed: ${(error as Error).message}`;
      return this.runOn(shard.primary, request, query, { node: shard.primary, fallback });
    }
  }

  async *stream(shardName: string, request: ShardRequest, query: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    const shard = this.topology.shard(shardName);
    const choice = request.intent === 'read' ? await this.chooseReader(shard, request) : { node: shard.primary };
    const { node } = choice;
    const started = performance.now();
    // The guard admits the stream as one call that lasts until its last row (or its error).
    let settle: (error?: unknown) => void = () => {};
    const finished = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    let admit: () => void = () => {};
    const admitted = new Promise<void>((resolve) => {
      admit = resolve;
    });
    const call = this.guards.of(node).run(() => {
      admit();
      return finished;
    }, request.routing.priority);
    let failure: ShardKitError | undefined;
    try {
      await Promise.race([admitted, call]);
      for await (const row of bindToClient(query, node.knex.client).stream()) yield row as Record<string, unknown>;
    } catch (error) {
      failure = asQueryFailure(error, node);
      settle(error);
      throw failure;
    } finally {
      settle();
      await call.catch(() => undefined);
      this.report(node, request, choice, started, failure);
    }
  }

  private chooseReader(shard: ShardHandle, request: ShardRequest): Promise<NodeChoice> {
    const { routing } = request;
    const after = routing.after?.positionFor(shard.name) ?? routing.session?.positionFor(shard.name);
    return this.router.choose(shard, routing.read, after);
  }

  private async runOn(node: NodeHandle, request: ShardRequest, query: AnyQueryBuilder, choice: NodeChoice): Promise<unknown> {
    const started = performance.now();
    try {
      const timeoutMs = request.routing.timeoutMs;
      const bound = bindToClient(query, node.knex.client);
      // PGlite has one connection and nothing to cancel from: its timeout only stops waiting.
      if (timeoutMs !== undefined) bound.timeout(timeoutMs, { cancel: node.config.dialect !== 'pglite' });
      const result = await this.guards.of(node).run(async () => await bound, request.routing.priority);
      this.report(node, request, choice, started, undefined);
      return result;
    } catch (error) {
      const failure = asQueryFailure(error, node);
      this.report(node, request, choice, started, failure);
      throw failure;
    }
  }

  private report(node: NodeHandle, request: ShardRequest, choice: NodeChoice, started: number, error: ShardKitError | undefined) {
    if (this.events.listenerCount('query') === 0) return;
    this.events.emit('query', {
      table: request.table,
      method: request.method,
      intent: request.intent,
      shard: node.config.shard,
      node: node.config.name,
      role: node.config.role,
      ...(choice.lagMs === undefined ? {} : { lagMs: choice.lagMs }),
      ...(choice.fallback === undefined ? {} : { fallback: choice.fallback }),
      durationMs: performance.now() - started,
      ...(error ? { error: error.code } : {}),
    });
  }

  /**
   * The primary's position after a write: a read carrying it sees the write. The write has
   * committed either way, so a position that cannot be read pins the session to the primary
   * instead of failing the write.
   */
  private async recordPosition(shard: ShardHandle, session: ReadSession): Promise<void> {
    const signals = shard.primary.dialect.replication;
    if (!signals || shard.replicas.length === 0) return;
    const state = await this.guards
      .of(shard.primary)
      .run(() => signals.primaryState(shard.primary.knex), 'critical')
      .catch(() => undefined);
    if (state?.position === undefined) session.requirePrimary(shard.name);
    else session.record(shard.name, state.position);
  }
}
