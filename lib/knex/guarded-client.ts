/**
 * A knex client whose connections and statements pass through a guard (the node's gate, see
 * access/node-gate.ts): the decorator that puts every statement shardkit sends (routed queries,
 * transactions, migrations, the control store, lag probes, `kit.forShard()` SQL) behind one
 * guard, whatever dialect the client is.
 *
 * It overrides the places where knex's client meets the driver:
 *
 *   acquireConnection / releaseConnection   admission, breaker, bounded pool wait
 *   acquireRawConnection, validateConnection    connections retired after a promotion
 *   query                                   one statement, bounded; typed errors
 *   stream                                  a streaming statement, watched for stalls
 *   destroyRawConnection                    bounded, so a pool over a dead server can close
 *
 * Statements take the ambient call scope (access/call-scope.ts), or the one scopedRunner()
 * gives a routed query. The files of lib/knex/ are the only ones that know knex's internals; the
 * knex 3 client methods this one relies on are listed in the interface below.
 */
import { inspect } from 'node:util';
import type { Knex } from 'knex';
import { KitClosedError, type ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, bindToClient, copyBuilder, internalsOf } from './builder-internals.js';

/** A connection being taken from the pool: abandoned on expiry, given back if it arrives too late. */
export interface PendingConnection {
  promise: Promise<unknown>;
  abort(): void;
  giveBack(connection: unknown): void;
}

/** What the guarded client asks of its guard (implemented by access/node-gate.ts). */
export interface ClientGuard<Scope> {
  readonly name: string;
  acquire(scope: Scope | undefined, take: () => PendingConnection): Promise<unknown>;
  release(connection: unknown): void;
  statement<T>(connection: unknown, sql: string, run: () => Promise<T>): Promise<T>;
  watchStream(connection: unknown, waiting: () => boolean, fail: (error: ShardKitError) => void): { rowArrived(): void; stop(): void };
  streamFailure(error: unknown, sql: string): ShardKitError;
}

interface QueryObject {
  sql: string;
  bindings?: unknown[];
  [field: string]: unknown;
}

/** What knex runs a builder with: its result, or its rows as a stream. */
export interface BuilderRunner {
  run(): Promise<unknown>;
  stream(): AsyncIterable<unknown>;
}

interface TarnPending {
  promise: Promise<unknown>;
  abort(): void;
}

/** The parts of a knex 3 Client this decorator calls or overrides. */
interface KnexClientInternals {
  pool?: { acquire(): TarnPending; release(connection: unknown): boolean };
  runner(builder: object): BuilderRunner & { client: unknown };
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  query(connection: unknown, query: string | QueryObject): Promise<unknown>;
  stream(connection: unknown, query: string | QueryObject, stream: NodeJS.ReadWriteStream, options: unknown): Promise<unknown>;
  acquireRawConnection(): Promise<unknown>;
  validateConnection(connection: unknown): boolean | Promise<boolean>;
  destroyRawConnection(connection: unknown): Promise<void>;
  processResponse(obj: { method?: string; response?: unknown }, runner: { builder?: object }): unknown;
  prepBindings(bindings: unknown): unknown[];
  emit(event: string, ...args: unknown[]): boolean;
  positionBindings(sql: string): string;
  _query(connection: unknown, query: QueryObject): Promise<unknown>;
  _stream(connection: unknown, query: QueryObject, stream: NodeJS.ReadWriteStream, options: unknown): Promise<unknown>;
}

export type KnexClientClass = abstract new (...args: any[]) => object;

const AFFECTED_ROWS = Symbol('shardkit.affectedRows');

/**
 * Makes an insert builder resolve to `{ rowCount }`, the rows the database says it inserted,
 * instead of each driver's own result (pg's Result, mysql2's insert id): the one shape of an
 * insert's result whatever the dialect.
 */
export function countInsertedRows<T extends object>(builder: T): T {
  (builder as { [AFFECTED_ROWS]?: boolean })[AFFECTED_ROWS] = true;
  return builder;
}

/** Throws to refuse a statement before it is sent (the escape hatch's check, kit/escape-hatch.ts). */
export type StatementCheck = (sql: string) => void;

const STATEMENT_CHECK = Symbol('shardkit.statementCheck');

/**
 * A knex instance sharing `db`'s pool whose statements (its transactions' too) pass `check`
 * first. knex's withUserParams() clones the instance with its own client config, which a
 * transaction's client shares, so the check reaches every statement made through the clone.
 */
export function withStatementCheck(db: Knex, check: StatementCheck): Knex {
  const checked = db.withUserParams({});
  (checked.client.config as { [STATEMENT_CHECK]?: StatementCheck })[STATEMENT_CHECK] = check;
  return checked;
}

const DRIVER_OPERATION = Symbol('shardkit.driverOperation');

type DriverOperation = <T>(connection: unknown, sql: string, operation: (connection: unknown) => Promise<T>) => Promise<T>;

/** True when `db`'s client passes the node's gate (a node of a kit), so that onGuardedConnection can run on it. */
export function isGuarded(db: Knex): boolean {
  return (db.client as { [DRIVER_OPERATION]?: DriverOperation })[DRIVER_OPERATION] !== undefined;
}

/**
 * Runs a driver-level operation that knex has no builder for (PostgreSQL's COPY FROM STDIN) on a
 * connection of `db`'s pool, as one statement of the node's gate: admitted, under the call's
 * deadline and the breaker, its failure typed, its 'query' event sent. Refused (rejects) on a
 * knex instance whose client is not guarded.
 */
export async function onGuardedConnection<T>(db: Knex, sql: string, operation: (connection: unknown) => Promise<T>): Promise<T> {
  const client = db.client as unknown as { [DRIVER_OPERATION]?: DriverOperation; acquireConnection(): Promise<unknown>; releaseConnection(connection: unknown): Promise<void> };
  if (!client[DRIVER_OPERATION]) throw new TypeError('onGuardedConnection needs a guarded knex instance (a node of the kit)');
  const connection = await client.acquireConnection();
  try {
    return await client[DRIVER_OPERATION](connection, sql, operation);
  } finally {
    await client.releaseConnection(connection);
  }
}

const SCOPED_RUNNER = Symbol('shardkit.scopedRunner');

/**
 * Runs `builder` on the guarded client of `db` (its pool, its node's gate) in `scope`. The
 * builder is neither copied nor changed: it compiles with its own client, of the same dialect,
 * so a routed query's builder runs as the caller built it, on any node, as often as it is run
 * (but columnInfo(), which runs as a copy bound to the node: see below).
 */
export function scopedRunner<Scope>(db: Knex, builder: object, scope: Scope): BuilderRunner {
  const client = db.client as unknown as { [SCOPED_RUNNER]?: (builder: object, scope: Scope) => BuilderRunner };
  if (!client[SCOPED_RUNNER]) throw new TypeError('scopedRunner needs a guarded knex instance (a node of the kit)');
  return client[SCOPED_RUNNER](builder, scope);
}

const GENERATION = Symbol('shardkit.connectionGeneration');
const RETIRE = Symbol('shardkit.retireConnections');

/**
 * Connections of `db`'s pool opened before now are closed instead of handed out again (those in
 * use, once given back). A replica promoted to primary needs it: sessions opened while it was a
 * replica may carry a read-only default, or be ended by the promotion. No-op on a knex instance
 * whose client is not guarded.
 */
export function retireConnections(db: Knex): void {
  (db.client as { [RETIRE]?: () => void })[RETIRE]?.();
}

/** How long closing one connection politely may take before its socket is destroyed. */
const POLITE_CLOSE_MS = 1000;

export function guardedClient<T extends KnexClientClass, Scope>(
  Base: T,
  gate: ClientGuard<Scope>,
  ambientScope: () => Scope | undefined,
  destroySocket: (connection: unknown) => boolean,
  affectedRows: (response: unknown) => number,
): T {
  const Client = Base as unknown as new (...args: any[]) => KnexClientInternals;

  class GuardedClient extends Client {
    /** Connections are stamped with the generation they were opened in; retiring starts a new one. */
    private connectionGeneration = 0;

    [RETIRE](): void {
      this.connectionGeneration++;
    }

    override async acquireRawConnection(): Promise<unknown> {
      const generation = this.connectionGeneration;
      const connection = (await super.acquireRawConnection()) as { [GENERATION]?: number };
      connection[GENERATION] = generation;
      return connection;
    }

    override validateConnection(connection: unknown): boolean | Promise<boolean> {
      // A connection without a stamp (none is: every one is made above) passes: refusing it would refuse each new one too, until the acquire times out.
      const generation = (connection as { [GENERATION]?: number })[GENERATION];
      return (generation === undefined || generation === this.connectionGeneration) && super.validateConnection(connection);
    }

    /** knex's runner, with a view of this client that acquires in `scope`. */
    [SCOPED_RUNNER](builder: object, scope: Scope): BuilderRunner {
      // columnInfo() compiles with the connection's database name (MySQL's table_schema): a copy runs it, bound to this client.
      const query = internalsOf(builder as AnyQueryBuilder)._method === 'columnInfo' ? bindToClient(copyBuilder(builder as AnyQueryBuilder), this as unknown as Knex.Client) : builder;
      const runner = super.runner(query);
      // Assigned, not defined by descriptor: Object.create(this, { ... }) took ~0.5 µs a statement on Node.js 20 against ~20 ns.
      const view = Object.create(this) as { acquireConnection(): Promise<unknown> };
      view.acquireConnection = () => this.acquireIn(scope);
      runner.client = view;
      return runner;
    }

    override acquireConnection(): Promise<unknown> {
      return this.acquireIn(ambientScope());
    }

    acquireIn(scope: Scope | undefined): Promise<unknown> {
      const { pool } = this;
      if (!pool) return Promise.reject(new KitClosedError());
      return gate
        .acquire(scope, () => {
          const pending = pool.acquire();
          return { promise: pending.promise, abort: () => pending.abort(), giveBack: (connection: unknown) => pool.release(connection) };
        })
        .then(hidePassword);
    }

    override releaseConnection(connection: unknown): Promise<void> {
      gate.release(connection);
      return super.releaseConnection(connection);
    }

    override query(connection: unknown, query: string | QueryObject): Promise<unknown> {
      let prepared: QueryObject;
      try {
        prepared = this.prepare(connection, query);
      } catch (error) {
        return Promise.reject(error);
      }
      return gate.statement(connection, prepared.sql, () => this._query(connection, prepared)).catch((error: unknown) => {
        this.emit('query-error', error, queryEvent(connection, prepared));
        throw error;
      });
    }

    [DRIVER_OPERATION]<R>(connection: unknown, sql: string, operation: (connection: unknown) => Promise<R>): Promise<R> {
      const prepared = { sql, bindings: [] };
      this.emit('query', queryEvent(connection, prepared));
      return gate.statement(connection, sql, () => operation(connection)).catch((error: unknown) => {
        this.emit('query-error', error, queryEvent(connection, prepared));
        throw error;
      });
    }

    override stream(connection: unknown, query: string | QueryObject, stream: NodeJS.ReadWriteStream, options: unknown): Promise<unknown> {
      const output = stream as NodeJS.ReadWriteStream & { readableLength: number; destroyed: boolean; destroy(error?: Error): void };
      let prepared: QueryObject;
      try {
        prepared = this.prepare(connection, query);
      } catch (error) {
        // knex leaves an error after the connection was acquired to the stream: a refusal must end it, or its reader waits forever.
        output.destroy(error as Error);
        return Promise.reject(error);
      }
      // Errors the driver emits on the stream leave typed, like a statement's; one that arrives
      // after the stream ended (a cancelled statement reporting in) has nobody left to tell.
      const emit = output.emit;
      output.emit = function (this: typeof output, event: string | symbol, ...args: unknown[]) {
        if (event === 'error') {
          if (this.destroyed && this.listenerCount('error') === 0) return false;
          args[0] = gate.streamFailure(args[0], prepared.sql);
        }
        return emit.call(this, event, ...args);
      } as typeof output.emit;
      const watch = gate.watchStream(connection, () => output.readableLength === 0, (error) => output.destroy(error));
      const write = output.write;
      output.write = function (this: typeof output, ...args: Parameters<typeof output.write>) {
        watch.rowArrived();
        return write.apply(this, args);
      } as typeof output.write;
      output.once('close', watch.stop);
      return Promise.resolve()
        .then(() => this._stream(connection, prepared, output, options))
        .finally(watch.stop);
    }

    override processResponse(obj: { method?: string; response?: unknown }, runner: { builder?: object }): unknown {
      const wanted = (runner?.builder as { [AFFECTED_ROWS]?: boolean } | undefined)?.[AFFECTED_ROWS];
      if (wanted && obj?.method === 'insert') return { rowCount: affectedRows(obj.response) };
      return super.processResponse(obj, runner);
    }

    override async destroyRawConnection(connection: unknown): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const tooLong = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, POLITE_CLOSE_MS);
        timer.unref();
      });
      await Promise.race([super.destroyRawConnection(connection).catch(() => undefined), tooLong]);
      clearTimeout(timer);
      destroySocket(connection);
    }

    /**
     * What knex's own query() does before running a statement (its 'query' event included),
     * without copying bound values into error messages; then the instance's statement check,
     * which throws to refuse the statement, for a stream as for a query.
     */
    private prepare(connection: unknown, query: string | QueryObject): QueryObject {
      const prepared = typeof query === 'string' ? { sql: query } : query;
      prepared.bindings = this.prepBindings(prepared.bindings);
      prepared.sql = this.positionBindings(prepared.sql);
      const check = (this as unknown as { config?: { [STATEMENT_CHECK]?: StatementCheck } }).config?.[STATEMENT_CHECK];
      check?.(prepared.sql);
      this.emit('query', queryEvent(connection, prepared));
      return prepared;
    }

    [inspect.custom](): string {
      return `GuardedClient(${gate.name})`;
    }
  }
  return GuardedClient as unknown as T;
}

/**
 * A query event as knex's own carry it: the statement with the connection's and transaction's
 * ids. Built with Object.assign, as knex does: on Node.js 20, `{ ...ids, ...statement }` took
 * ~5 µs a statement against ~0.15 µs (a second spread into a new object leaves V8's fast path).
 */
function queryEvent(connection: unknown, prepared: QueryObject): QueryObject & { __knexUid?: unknown; __knexTxId?: unknown } {
  const { __knexUid, __knexTxId } = (connection ?? {}) as { __knexUid?: unknown; __knexTxId?: unknown };
  return Object.assign({ __knexUid, __knexTxId }, prepared);
}

/** mysql2 keeps the password on each connection's config: out of sight, as knex's own acquire does. */
function hidePassword(connection: unknown): unknown {
  const config = (connection as { config?: Record<string, unknown> } | null)?.config;
  if (config && typeof config.password === 'string') Object.defineProperty(config, 'password', { enumerable: false, value: config.password });
  return connection;
}
