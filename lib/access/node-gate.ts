/**
 * The guarded seam of one node: every connection shardkit takes from the node's pool and every
 * statement it sends there passes through here (see guarded-client.ts, which hooks knex's
 * client to it). In order:
 *
 *   acquire    the kit's veto first (its degradation level shedding background work); the
 *              breaker fails fast while open; admission with priority (health probes skip
 *              it); a pooled connection within the call's deadline and `timeouts.acquireMs`
 *   statement  runs within its deadline; on expiry or abort the connection is destroyed (it may
 *              still be busy) and the server is asked to cancel, in the background; node faults
 *              and timeouts count for the breaker; every error leaves as a ShardKitError
 *   release    gives the admission slot back, once
 *
 * Each statement is reported (node, purpose, priority, duration, error code) to the sink.
 * Deadlines are enforced here, on the client, whatever the server does: a stopped server, a
 * black-holed host or a dying connection cannot keep a caller past its deadline.
 */
import type { NodeRole } from '../config/config-types.js';
import type { ErrorClass } from '../dialect/dialect-adapter.js';
import { QueryCancelledError, QueryFailedError, QueryTimeoutError, type ShardKitError, type TimeoutStage } from '../errors.js';
import type { Admission, Ticket } from '../resilience/admission.js';
import type { NodeBreaker } from '../resilience/node-breaker.js';
import type { ClientGuard, PendingConnection } from '../knex/guarded-client.js';
import { DISPOSED } from '../knex/connections.js';
import type { CallScope, GuardPriority, Purpose } from './call-scope.js';
import { connectionFailure, type NodeSubject, statementFailure } from './statement-errors.js';

const ROLLBACK = /^\s*rollback\b/i;
const COMMIT = /^\s*commit\b/i;
/** How long a ROLLBACK past its deadline may take before its connection is given up. */
const ROLLBACK_BOUND_MS = 2000;

/** What `kit.on('statement', ...)` receives for every statement a node ran. */
export interface StatementEvent {
  shard: string;
  node: string;
  role: NodeRole;
  purpose: Purpose;
  priority: GuardPriority;
  durationMs: number;
  /** The error code, when the statement failed. */
  error?: string;
}

export interface GateTimeouts {
  queryMs: number;
  acquireMs: number;
}

/** What the gate needs of the dialect to classify errors and get rid of a connection. */
export interface ConnectionHooks {
  classify(error: unknown): ErrorClass;
  /** Closes the connection's socket at once; false where there is none to close (PGlite). */
  destroy(connection: unknown): boolean;
  /** Asks the server to stop the connection's statement (best effort, bounded, in the background). */
  cancel(connection: unknown): Promise<void>;
  /** Calls `lost` when the connection ends or fails; returns what stops listening. */
  onLost(connection: unknown, lost: () => void): () => void;
}

/** Refuses a call before it is admitted (the kit's degradation level); undefined lets it through. */
export type AdmissionVeto = (scope: CallScope, node: NodeSubject) => ShardKitError | undefined;

interface Checkout {
  ticket: Ticket | undefined;
  scope: CallScope;
  since: number;
}

const NO_SCOPE: CallScope = { priority: 'normal' };

export class NodeGate implements ClientGuard<CallScope> {
  private readonly checkouts = new Map<unknown, Checkout>();
  /** Why the gate gave up on a connection: later statements on it (knex's ROLLBACK) fail with the same error at once. */
  private readonly givenUp = new WeakMap<object, ShardKitError>();

  constructor(
    readonly subject: NodeSubject & { role: NodeRole },
    readonly breaker: NodeBreaker,
    readonly admission: Admission,
    private readonly timeouts: GateTimeouts,
    private readonly hooks: ConnectionHooks,
    private readonly report: (event: StatementEvent) => void,
    private readonly veto?: AdmissionVeto,
  ) {}

  get name(): string {
    return this.subject.node;
  }

  /** Admitted calls holding a connection now (statements, transactions, open streams); health probes not included. */
  get inFlight(): number {
    return this.admission.admitted;
  }

  /** A connection for `scope`, or a typed error within its deadline. */
  async acquire(scope: CallScope = NO_SCOPE, take: () => PendingConnection): Promise<unknown> {
    const deadline = Math.min(this.deadlineOf(scope), performance.now() + this.timeouts.acquireMs);
    const vetoed = this.veto?.(scope, this.subject);
    if (vetoed) throw vetoed;
    this.breaker.assertAvailable();
    const ticket =
      scope.priority === 'health' ? undefined : await this.admission.admit(scope.priority, deadline, scope.signal);
    try {
      const connection = await this.within(take(), deadline, scope.signal, 'connect');
      this.checkouts.set(connection, { ticket, scope, since: performance.now() });
      return connection;
    } catch (error) {
      ticket?.release();
      const failure = error instanceof QueryTimeoutError ? error : connectionFailure(error, this.subject, this.hooks.classify);
      if (failure.retryable && !(error instanceof QueryCancelledError)) this.breaker.recordFailure(failure);
      throw failure;
    }
  }

  /** Back to the pool; the admission slot is freed once, however often this is called. */
  release(connection: unknown): void {
    const checkout = this.checkouts.get(connection);
    if (!checkout) return;
    this.checkouts.delete(connection);
    // Only admitted calls teach the drain estimate: health probes hold a connection for a moment and would make waits look short.
    if (checkout.ticket) {
      this.admission.observeHoldMs(performance.now() - checkout.since);
      checkout.ticket.release();
    }
  }

  /** Runs one statement on `connection` within its deadline. */
  async statement<T>(connection: unknown, sql: string, run: () => Promise<T>): Promise<T> {
    const givenUp = this.givenUp.get(connection as object);
    if (givenUp) throw givenUp;
    const scope = this.checkouts.get(connection)?.scope ?? NO_SCOPE;
    const started = performance.now();
    let deadline = this.deadlineOf(scope);
    if (deadline <= started) {
      // Past the deadline a ROLLBACK still goes, within its own short bound, so that a slow
      // transaction's connection goes back to the pool clean; any other statement is not sent.
      // A late COMMIT is not sent: the connection is destroyed, so the server rolls back. Where
      // there is no socket to destroy (PGlite, in-process), it commits within the same short bound
      // instead, so that no transaction stays open on a pooled connection and the outcome is told.
      const ending = ROLLBACK.test(sql) || (COMMIT.test(sql) && !this.disposeNow(connection));
      if (ending) deadline = started + Math.min(this.timeouts.acquireMs, ROLLBACK_BOUND_MS);
      else {
        const late = new QueryTimeoutError(this.subject.shard, this.subject.node, 'statement', 0);
        this.emit(scope, started, late);
        throw late;
      }
    }
    try {
      const result = await this.breaker.run(() => this.bounded(connection, run(), deadline, scope.signal, sql));
      this.emit(scope, started, undefined);
      return result;
    } catch (error) {
      const failure = statementFailure(error, this.subject, this.hooks.classify, sql);
      this.emit(scope, started, failure);
      throw failure;
    }
  }

  /**
   * Watches a streaming statement: the first row must come within the deadline and each later
   * one within the scope's timeout of asking for it (time the consumer spends on a row does not
   * count). On expiry the connection is destroyed and `fail` ends the stream with a typed error.
   * Returns the function that stops watching.
   */
  watchStream(connection: unknown, waiting: () => boolean, fail: (error: ShardKitError) => void): { rowArrived(): void; stop(): void } {
    const scope = this.checkouts.get(connection)?.scope ?? NO_SCOPE;
    const idleMs = scope.timeoutMs ?? this.timeouts.queryMs;
    const started = performance.now();
    let due = this.deadlineOf(scope);
    let stage: TimeoutStage = 'statement';
    const check = () => {
      const now = performance.now();
      if (!waiting()) due = now + idleMs;
      else if (now >= due) {
        stop();
        const error = new QueryTimeoutError(this.subject.shard, this.subject.node, stage, Math.round(stage === 'stream' ? idleMs : now - started));
        this.dispose(connection, error);
        fail(error);
      }
    };
    const timer = setInterval(check, Math.max(10, Math.min(250, idleMs / 4)));
    const onAbort = () => {
      stop();
      const error = new QueryCancelledError(scope.signal?.reason);
      this.dispose(connection, error);
      fail(error);
    };
    scope.signal?.addEventListener('abort', onAbort, { once: true });
    // A server that dies mid-stream can leave the driver waiting: its connection ending is enough.
    const unlisten = this.hooks.onLost(connection, () => {
      stop();
      fail(new QueryFailedError(`query on shard ${this.subject.shard} (node ${this.subject.node}) failed: the connection was lost mid-stream`, {
        shard: this.subject.shard,
        node: this.subject.node,
        retryable: true,
      }));
    });
    const stop = () => {
      clearInterval(timer);
      scope.signal?.removeEventListener('abort', onAbort);
      unlisten();
    };
    return {
      rowArrived: () => {
        stage = 'stream';
        due = performance.now() + idleMs;
      },
      stop,
    };
  }

  /** Error of a driver stream, typed like a statement's. */
  streamFailure(error: unknown, sql: string): ShardKitError {
    return statementFailure(error, this.subject, this.hooks.classify, sql);
  }

  /** Destroys every checked-out connection: what close() does once its grace period is over. */
  disposeAll(reason: ShardKitError): void {
    for (const connection of this.checkouts.keys()) this.dispose(connection, reason);
  }

  private deadlineOf(scope: CallScope): number {
    return scope.deadline ?? performance.now() + (scope.timeoutMs ?? this.timeouts.queryMs);
  }

  /** `work` on `connection`, or a typed error at the deadline or abort, the connection then destroyed. */
  private bounded<T>(connection: unknown, work: Promise<T>, deadline: number, signal: AbortSignal | undefined, sql: string): Promise<T> {
    return this.within(work, deadline, signal, 'statement', (error) => this.dispose(connection, statementFailure(error, this.subject, this.hooks.classify, sql)));
  }

  private within<T>(
    work: Promise<T> | PendingConnection,
    deadline: number,
    signal: AbortSignal | undefined,
    stage: TimeoutStage,
    giveUp?: (error: Error) => void,
  ): Promise<T> {
    const pending = work instanceof Promise ? undefined : work;
    const promise = (pending ? pending.promise : work) as Promise<T>;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const abandon = (error: Error) => {
        if (settled) return;
        settled = true;
        cleanup();
        pending?.abort();
        giveUp?.(error);
        reject(error);
      };
      const remaining = deadline - performance.now();
      const timer = setTimeout(
        () => abandon(new QueryTimeoutError(this.subject.shard, this.subject.node, stage, Math.max(0, Math.round(remaining)))),
        Math.max(0, remaining),
      );
      const onAbort = () => abandon(new QueryCancelledError(signal?.reason));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          if (!settled) {
            settled = true;
            cleanup();
            resolve(value);
          } else {
            // A connection that arrived after the caller gave up goes straight back.
            pending?.giveBack(value);
          }
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          cleanup();
          reject(error);
        },
      );
    });
  }

  /** Gives up a connection that ran out of time; false where it cannot be destroyed (no socket). */
  private disposeNow(connection: unknown): boolean {
    const late = new QueryTimeoutError(this.subject.shard, this.subject.node, 'statement', 0);
    this.dispose(connection, late);
    return this.givenUp.get(connection as object) === late;
  }

  private dispose(connection: unknown, reason: ShardKitError): void {
    if (!this.hooks.destroy(connection)) return;
    (connection as Record<string, unknown>)[DISPOSED] = reason.message;
    this.givenUp.set(connection as object, reason);
    void this.hooks.cancel(connection).catch(() => undefined);
  }

  private emit(scope: CallScope, started: number, error: ShardKitError | undefined): void {
    this.report({
      shard: this.subject.shard,
      node: this.subject.node,
      role: this.subject.role,
      purpose: scope.purpose ?? 'query',
      priority: scope.priority,
      durationMs: performance.now() - started,
      ...(error ? { error: error.code } : {}),
    });
  }
}
