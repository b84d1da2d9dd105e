/**
 * What a call asks of the guarded seam: its priority, its deadline, a signal that abandons it,
 * and what it is for (events and metrics). A scope reaches the seam in one of two ways:
 *
 *   - with a statement: the engine runs a routed query through the node's client in its scope
 *     (knex/guarded-client.ts's scopedRunner), so the hot path costs no AsyncLocalStorage;
 *   - around work: `withScope(scope, fn)` for everything inside fn (migrations, the lag
 *     monitor, transactions), through AsyncLocalStorage.
 *
 * Without either, a statement gets the node's defaults: priority normal, `timeouts.queryMs`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { QueryPriority } from '../errors.js';

/** 'health': the lag monitor's probes, never queued or shed (never without a deadline). */
export type GuardPriority = QueryPriority | 'health';

/** Why a statement runs, as metrics and events report it. */
export type Purpose = 'query' | 'transaction' | 'lag-probe' | 'control' | 'backfill' | 'verify' | 'shadow-read' | 'dual-write' | 'rebalance' | 'schema' | 'maintenance' | 'failover';

export interface CallScope {
  priority: GuardPriority;
  /** An absolute deadline (performance.now() milliseconds) for everything in the scope. */
  deadline?: number;
  /** A bound for each statement (and each wait for a connection) when there is no absolute deadline. */
  timeoutMs?: number;
  /** Abandons the call: waits end, running statements are cancelled. */
  signal?: AbortSignal;
  purpose?: Purpose;
}

const storage = new AsyncLocalStorage<CallScope>();

/**
 * Runs `fn` (and everything it awaits) in `scope`; an inner scope replaces an outer one. What fn
 * returns is awaited inside the scope, so that a knex builder returned unexecuted still runs in it.
 */
export function withScope<T>(scope: CallScope, fn: () => T | PromiseLike<T>): Promise<T> {
  return storage.run(scope, async () => await fn());
}

export function currentScope(): CallScope | undefined {
  return storage.getStore();
}
