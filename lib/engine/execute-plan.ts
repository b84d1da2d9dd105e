/**
 * Runs a plan: one query per target shard, at most `concurrency` at a time, then one result:
 * merged rows for a multi-shard select (merge/merge-rows.ts). Writes run in execute-write.ts.
 *
 * When shards fail, the others are still awaited, so that the error can say which shards
 * answered; a shard that sheds the read is asked again first, within the call's deadline. A
 * select with `partial: 'allow'` instead returns the merge of the shards that
 * answered and names the missing ones. An aborted read rejects at once; its running statements
 * are cancelled by their node's gate.
 */
import type { SqlFamily } from '../config/config-types.js';
import { QueryCancelledError, QueryFailedError, ScatterError, type ShardFailure, ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, internalsOf, READ_METHODS } from '../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { mapWithConcurrency } from '../util/map-with-concurrency.js';
import type { ColumnClassifier } from './column-types.js';
import { combineResults, emptyResult } from './combine-results.js';
import { executeWrite } from './execute-write.js';
import { retryShed } from './retry-shed.js';
import type { Row } from './merge/compare-values.js';
import { mergeArrays } from './merge/merge-rows.js';
import type { QueryIntent, RoutingOptions, ShardAccess, ShardRequest } from './shard-access.js';
import { shardReadQuery } from './shard-query.js';


export interface Engine {
  access: ShardAccess;
  columnTypes: ColumnClassifier;
  family: SqlFamily;
  /** Bound parameters one statement may carry (inserts are split to fit). */
  maxParameters: number;
  /** How the driver returns BIGINT values, for values the merge computes. */
  bigintsAs: 'string' | 'number';
}

export interface ExecutionOptions {
  /** Shards queried at once. */
  concurrency: number;
  /** 'allow': a select answers from the shards that answered and reports the others. */
  partial: 'fail' | 'allow';
  signal?: AbortSignal;
}

export interface Execution {
  result: unknown;
  /** Shards whose part is missing from `result` (only with partial: 'allow'). */
  missing: ShardFailure[];
}

export async function executePlan(
  plan: QueryPlan,
  builder: AnyQueryBuilder,
  engine: Engine,
  routing: RoutingOptions,
  options: ExecutionOptions,
): Promise<Execution> {
  const shards = targetShards(plan.route);
  if (shards.length === 0) return { result: emptyResult(plan.method, internalsOf(builder)._single.returning !== undefined), missing: [] };
  const intent: QueryIntent = READ_METHODS.has(plan.method) ? 'read' : 'write';
  if (intent === 'write') return executeWrite(plan, builder, engine, routing, options);
  if (options.signal?.aborted) throw new QueryCancelledError(options.signal.reason);
  const request: ShardRequest = { intent, table: plan.table, method: plan.method, routing };
  const run = (shard: string) => engine.access.run(shard, request, shardReadQuery(builder, plan, shard));
  // One shard without a merge: its result or its error, as knex gives them.
  if (shards.length === 1 && !plan.merge) return { result: await cancellable(run(shards[0]!), options.signal), missing: [] };

  // A shard that sheds is asked again within the deadline before the scatter fails (retry-shed.ts).
  const runOrRetry = (shard: string) => retryShed(() => run(shard), routing.deadline, options.signal);
  const outcomes = await cancellable(mapWithConcurrency(shards, options.concurrency, runOrRetry, { signal: options.signal }), options.signal);
  const failures: ShardFailure[] = [];
  const answered: { shard: string; value: unknown }[] = [];
  outcomes.forEach((outcome, index) => {
    const shard = shards[index]!;
    if (outcome.status === 'fulfilled') answered.push({ shard, value: outcome.value });
    else if (outcome.status === 'rejected') failures.push({ shard, error: asShardKitError(outcome.reason) });
  });
  const acceptPartial = options.partial === 'allow' && answered.length > 0;
  if (failures.length > 0 && !acceptPartial) throw new ScatterError(failures, answered.map((entry) => entry.shard));
  const parts = answered.map((entry) => entry.value);
  if (!plan.merge) return { result: combineResults(parts), missing: failures };
  const columnType = await engine.columnTypes.lookup(plan.merge.tables);
  const result = await mergeArrays(plan.merge, parts as Row[][], { family: engine.family, columnType, bigintsAs: engine.bigintsAs });
  return { result, missing: failures };
}

/** Rejects as soon as `signal` aborts, whether or not `work` has settled. */
function cancellable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(new QueryCancelledError(signal.reason));
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

function asShardKitError(reason: unknown): ShardKitError {
  if (reason instanceof ShardKitError) return reason;
  return new QueryFailedError(reason instanceof Error ? reason.message : String(reason), { cause: reason });
}
