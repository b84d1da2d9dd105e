/**
 * The ShardAccess of a kit: writes go to the shard's primary, reads to the node the read router
 * picks (see replicas/read-router.ts). Each query runs in its call's scope (priority,
 * deadline, and for reads the caller's signal), so the node's gate bounds it, and is reported to
 * the query listener with the node that served it and the lag assumed. A replica read that
 * fails for a retryable reason (the replica went away, a query cancelled by recovery) is
 * repeated once on the primary within the same deadline: reads are safe to repeat. Every
 * outcome (time, error code) also goes to `observe`, the kit's health signal.
 */
import type { Knex } from 'knex';
import { type CallScope, withScope } from '../access/call-scope.js';
import { statementFailure } from '../access/statement-errors.js';
import type { NodeRole } from '../config/config-types.js';
import type { ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, bindToClient, type BuilderMethod } from '../knex/builder-internals.js';
import { type BuilderRunner, scopedRunner } from '../knex/guarded-client.js';
import type { NodeChoice, ReadRouter } from '../replicas/read-router.js';
import { recordWritePosition } from '../replicas/write-position.js';
import { explainsSwitch } from '../topology/shard-primary.js';
import type { NodeHandle, ShardHandle, Topology } from '../topology/topology.js';
import type { QueryIntent, ShardAccess, ShardRequest, TransactOutcome } from './shard-access.js';
import { WriteMarker } from './write-markers.js';

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
      const result = shard.failover.canSwitch ? await this.writeHeld(shard, request, query) : await this.runOn(shard.primary, request, query, { node: shard.primary });
      if (routing.session) await recordWritePosition(shard, routing.session, routing.deadline);
      return result;
    }
    const choice = await this.chooseReader(shard, request);
    if (choice.node === shard.primary) return this.onPrimary(shard, routing.deadline, (node) => this.runOn(node, request, query, { ...choice, node }), REPEAT_READ);
    try {
      return await this.runOn(choice.node, request, query, choice);
    } catch (error) {
      if (!(error as ShardKitError).retryable) throw error;
      const fallback = `${choice.node.config.name} failed: ${(error as Error).message}`;
      return this.onPrimary(shard, routing.deadline, (node) => this.runOn(node, request, query, { node, fallback }), REPEAT_READ);
    }
  }

  async transact(shardName: string, request: ShardRequest, queries: readonly AnyQueryBuilder[]): Promise<TransactOutcome> {
    const shard = this.topology.shard(shardName);
    const { priority, deadline } = request.routing;
    // On a shard that can fail over, a repeat of the write learns from its marker whether it committed.
    const marker = shard.failover.canSwitch ? new WriteMarker() : undefined;
    const outcome = await this.onPrimary(
      shard,
      deadline,
      async (primary) => {
        const started = performance.now();
        const attempt = await withScope({ priority, deadline, purpose: 'query' }, () => transactOn(primary, queries, marker));
        this.report(primary, request, { node: primary }, started, attempt.committed === true ? undefined : attempt.error);
        if (attempt.committed !== true) throw new Uncommitted(attempt);
        return attempt;
      },
      // Nothing committed, or a COMMIT lost in flight that the marker settles on the repeat.
      (error) => error instanceof Uncommitted && (error.outcome.committed === false || marker !== undefined),
    ).catch((error: unknown) => {
      if (error instanceof Uncommitted) return error.outcome;
      throw error;
    });
    if (outcome.committed === true && request.routing.session) await recordWritePosition(shard, request.routing.session, deadline);
    return outcome;
  }

  /**
   * A single write on a shard that can fail over runs as a transaction of one statement with its
   * marker (write-markers.ts), so that a write whose primary was lost, before or during its
   * COMMIT, is sent again to the promoted node and applied there exactly once.
   */
  private async writeHeld(shard: ShardHandle, request: ShardRequest, query: AnyQueryBuilder): Promise<unknown> {
    // The session's position is recorded by run(), once: Object.assign, since a spread followed by a new property is slow on Node.js 20.
    const outcome = await this.transact(shard.name, { ...request, routing: Object.assign({}, request.routing, { session: undefined }) }, [query]);
    if (outcome.committed !== true) throw outcome.error;
    return outcome.results[0];
  }

  /**
   * Runs `work` on the shard's primary. While a switch is under way it waits for it (held, up to
   * the hold window and the deadline). When the primary fails in a way a switch can explain and
   * `repeatable` says the work may be sent again, it waits for the switch and repeats the work
   * on the new primary. Without a new primary the failure stands.
   */
  private async onPrimary<T>(shard: ShardHandle, deadline: number | undefined, work: (node: NodeHandle) => Promise<T>, repeatable: (error: unknown) => boolean): Promise<T> {
    const { failover } = shard;
    let node = await failover.ready(deadline);
    // Counted per primary: attempts on the one before a switch do not use up the new one's. In
    // all, bounded too: a shard switched back and forth must not keep a call without a deadline.
    let attemptsOnNode = 0;
    for (let attempts = 1; ; attempts++) {
      const { epoch, resumed } = failover;
      attemptsOnNode++;
      try {
        return await work(node);
      } catch (error) {
        const failure = error instanceof Uncommitted ? error.outcome.error : error;
        if (!failover.canSwitch || !explainsSwitch(failure, node)) throw error;
        // The shard learns of the fault whatever this call does next: a switch may be due.
        failover.suspect(node, failure);
        if (!repeatable(error) || attempts >= MAX_ATTEMPTS_IN_ALL) throw error;
        const next = await failover.ready(deadline);
        if (failover.epoch !== epoch) {
          attemptsOnNode = 0;
        } else {
          // The same primary answers again (only a connection died, a promotion ended others'
          // sessions): the work may go to it again, a bounded number of times.
          const answeredAgain = failover.resumed > resumed && attemptsOnNode < MAX_ATTEMPTS_ON_ONE_PRIMARY;
          if (!answeredAgain) throw error;
        }
        node = next;
      }
    }
  }

  async *stream(shardName: string, request: ShardRequest, query: AnyQueryBuilder): AsyncGenerator<Record<string, unknown>> {
    const shard = this.topology.shard(shardName);
    const choice = request.intent === 'read' ? await this.chooseReader(shard, request) : { node: shard.primary };
    const { node } = choice;
    const started = performance.now();
    let failure: ShardKitError | undefined;
    try {
      // The connection is held, and its admission slot taken, from the first row to the last.
      for await (const row of this.runnerOn(node, request, query).stream()) yield row as Record<string, unknown>;
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
      const result = await this.runnerOn(node, request, query).run();
      this.report(node, request, choice, started, undefined);
      return result;
    } catch (error) {
      const failure = asShardKitError(error, node);
      this.report(node, request, choice, started, failure);
      throw failure;
    }
  }

  /** `query` on `node` in the call's scope; the builder itself is left as it is (it may be the caller's). */
  private runnerOn(node: NodeHandle, request: ShardRequest, query: AnyQueryBuilder): BuilderRunner {
    const { priority, deadline, timeoutMs, signal } = request.routing;
    const scope: CallScope = { priority, deadline, timeoutMs, purpose: 'query', ...(request.intent === 'read' && signal ? { signal } : {}) };
    return scopedRunner(node.knex, query, scope);
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
      role: this.topology.roleOf(node) === 'primary' ? 'primary' : 'replica',
      ...(choice.lagMs === undefined ? {} : { lagMs: choice.lagMs }),
      ...(choice.fallback === undefined ? {} : { fallback: choice.fallback }),
      durationMs,
      ...(error ? { error: error.code } : {}),
    });
  }
}

const MAX_ATTEMPTS_ON_ONE_PRIMARY = 3;
const MAX_ATTEMPTS_IN_ALL = 10;

/** Reads are safe to repeat on the new primary. */
const REPEAT_READ = () => true;

/** A transaction that did not commit, or whose COMMIT was lost, carried through onPrimary(). */
class Uncommitted extends Error {
  constructor(readonly outcome: Extract<TransactOutcome, { error: ShardKitError }>) {
    super(outcome.error.message);
  }
}

function asShardKitError(error: unknown, node: NodeHandle): ShardKitError {
  return statementFailure(error, { shard: node.config.shard, node: node.config.name, description: node.config.description }, node.dialect.classifyError);
}

/**
 * BEGIN, the statements, COMMIT. A failure before COMMIT leaves nothing committed (the
 * transaction is rolled back, or dies with its connection); a lost connection or a timeout
 * during COMMIT leaves the outcome unknown; any other COMMIT error (a deferred constraint) means
 * the database refused it. With a `marker` (write-markers.ts), the transaction places it first,
 * and one that finds it placed by an earlier attempt reports that attempt's commit.
 */
async function transactOn(node: NodeHandle, queries: readonly AnyQueryBuilder[], marker?: WriteMarker): Promise<TransactOutcome> {
  let trx: Knex.Transaction | undefined;
  // knex settles a transaction's executionPromise with the failure of its own BEGIN or COMMIT.
  let knexFailure: unknown;
  try {
    trx = await node.knex.transaction();
    trx.executionPromise.catch((error: unknown) => {
      knexFailure ??= error;
    });
    if (marker && !(await marker.place(trx, node))) {
      await trx.rollback().catch(() => undefined);
      await trx.executionPromise.catch(() => undefined);
      return { committed: true, results: marker.results ?? [] };
    }
    const results: unknown[] = [];
    for (const query of queries) results.push(await bindToClient(query, trx.client));
    const statementsDone = trx;
    trx = undefined;
    if (marker) marker.results = results;
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
