/**
 * The ShardAccess of a kit: writes go to the shard's primary, reads to the node the read router
 * picks (see replicas/read-router.ts). Each query runs stamped with its call's scope (priority,
 * deadline, and for reads the caller's signal), so the node's gate bounds it, and is reported to
 * the query listener with the node that served it and the lag assumed. A replica read that
 * fails for a retryable reason (the replica went away, a query cancelled by recovery) is
 * repeated once on the primary within the same deadline: reads are safe to repeat. Every
 * outcome (time, error code) also goes to `observe`, the kit's health signal.
 */
import type { Knex } from 'knex';
import { type CallScope, scopeBuilder, withScope } from '../access/call-scope.js';
import { statementFailure } from '../access/statement-errors.js';
import type { NodeRole } from '../config/config-types.js';
import type { ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, bindToClient, type BuilderMethod } from '../knex/builder-internals.js';
import type { NodeChoice, ReadRouter } from '../replicas/read-router.js';
import { recordWritePosition } from '../replicas/write-position.js';
import type { NodeHandle, ShardHandle, Topology } from '../topology/topology.js';
import type { QueryIntent, ShardAccess, ShardRequest, TransactOutcome } from './shard-access.js';

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
    private readonly router: ReadRouter,
    private readonly events: QueryEventSink,
    /** Each query's time on its node (queueing included) and error code: the degradation signal. */
    private readonly observe?: (durationMs: number, errorCode: string | undefined) => void,
  ) {}

  async run(shardName: string, request: ShardRequest, query: AnyQueryBuilder): Promise<unknown> {
    const shard = this.topology.shard(shardName);
    const { routing } = request;
    if (request.intent === 'write') {
      const result = await this.runOn(shard.primary, request, query, { node: shard.primary });
      if (routing.session) await recordWritePosition(shard, routing.session, routing.deadline);
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

  async transact(shardName: string, request: ShardRequest, queries: readonly AnyQueryBuilder[]): Promise<TransactOutcome> {
    const { primary } = this.topology.shard(shardName);
    const started = performance.now();
    const { priority, deadline } = request.routing;
    const outcome = await withScope({ priority, deadline, purpose: 'query' }, () => transactOn(primary, queries));
    this.report(primary, request, { node: primary }, started, outcome.committed === true ? undefined : outcome.error);
    if (outcome.committed === true && request.routing.session) await recordWritePosition(this.topology.shard(shardName), request.routing.session, deadline);
    return outcome;
  }

  async *stream(shardName: string, request: ShardRequest, query: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    const shard = this.topology.shard(shardName);
    const choice = request.intent === 'read' ? await this.chooseReader(shard, request) : { node: shard.primary };
    const { node } = choice;
    const started = performance.now();
    let failure: ShardKitError | undefined;
    try {
      // The connection is held, and its admission slot taken, from the first row to the last.
      for await (const row of this.bound(node, request, query).stream()) yield row as Record<string, unknown>;
    } catch (error) {
      failure = asShardKitError(error, node);
      throw failure;
    } finally {
      this.report(node, request, choice, started, failure);
    }
  }

  private chooseReader(shard: ShardHandle, request: ShardRequest): Promise<NodeChoice> {
    const { routing } = request;
    const after = routing.after?.positionFor(shard.name) ?? routing.session?.positionFor(shard.name);
    return this.router.choose(shard, routing.read, after, routing.deadline);
  }

  private async runOn(node: NodeHandle, request: ShardRequest, query: AnyQueryBuilder, choice: NodeChoice): Promise<unknown> {
    const started = performance.now();
    try {
      const result = await this.bound(node, request, query);
      this.report(node, request, choice, started, undefined);
      return result;
    } catch (error) {
      const failure = asShardKitError(error, node);
      this.report(node, request, choice, started, failure);
      throw failure;
    }
  }

  /** The engine's private copy, pointed at `node` and stamped with the call's scope. */
  private bound(node: NodeHandle, request: ShardRequest, query: AnyQueryBuilder): AnyQueryBuilder {
    const { priority, deadline, timeoutMs, signal } = request.routing;
    const scope: CallScope = { priority, deadline, timeoutMs, purpose: 'query', ...(request.intent === 'read' && signal ? { signal } : {}) };
    return scopeBuilder(bindToClient(query, node.knex.client), scope);
  }

  private report(node: NodeHandle, request: ShardRequest, choice: NodeChoice, started: number, error: ShardKitError | undefined) {
    const durationMs = performance.now() - started;
    this.observe?.(durationMs, error?.code);
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
      durationMs,
      ...(error ? { error: error.code } : {}),
    });
  }
}

function asShardKitError(error: unknown, node: NodeHandle): ShardKitError {
  return statementFailure(error, { shard: node.config.shard, node: node.config.name, description: node.config.description }, node.dialect.classifyError);
}

/**
 * BEGIN, the statements, COMMIT. A failure before COMMIT leaves nothing committed (the
 * transaction is rolled back, or dies with its connection); a lost connection or a timeout
 * during COMMIT leaves the outcome unknown; any other COMMIT error (a deferred constraint) means
 * the database refused it.
 */
async function transactOn(node: NodeHandle, queries: readonly AnyQueryBuilder[]): Promise<TransactOutcome> {
  let trx: Knex.Transaction | undefined;
  // knex settles a transaction's executionPromise with the failure of its own BEGIN or COMMIT.
  let knexFailure: unknown;
  try {
    trx = await node.knex.transaction();
    trx.executionPromise.catch((error: unknown) => {
      knexFailure ??= error;
    });
    const results: unknown[] = [];
    for (const query of queries) results.push(await bindToClient(query, trx.client));
    const statementsDone = trx;
    trx = undefined;
    try {
      await statementsDone.commit();
      await statementsDone.executionPromise;
      return { committed: true, results };
    } catch (error) {
      const failure = asShardKitError(knexFailure ?? error, node);
      const lost = failure.code === 'QUERY_TIMEOUT' || node.dialect.classifyError(failure.cause ?? failure).nodeFault;
      return { committed: lost ? 'unknown' : false, error: failure };
    }
  } catch (error) {
    // A BEGIN that failed leaves later statements failing as "already complete": report the BEGIN.
    const cause = knexFailure ?? error;
    await trx?.rollback().catch(() => undefined);
    await trx?.executionPromise.catch(() => undefined);
    return { committed: false, error: asShardKitError(cause, node) };
  }
}
