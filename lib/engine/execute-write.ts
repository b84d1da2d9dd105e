/**
 * Runs a write on the shards its plan targets, so that on every failure path (a driver error,
 * a timeout, an abort, a node that sheds) the caller learns exactly which shards committed:
 *
 *   - one shard, one statement: an ordinary autocommit statement; its error is the shard's
 *   - otherwise each shard's part is one transaction (an insert split into statements that
 *     fit the dialect's parameter limit): it commits whole or not at all
 *
 * A multi-shard write that fails on some shards throws ScatterError with the shards that
 * committed (`succeeded`), those whose COMMIT was lost in flight (`unknown`) and the failures
 * (the others did not commit). An abort stops dispatching: shards not yet started are reported
 * as cancelled, shards already writing run to their end so that their outcome is known.
 */
import { countInsertedRows } from '../knex/guarded-client.js';
import { QueryCancelledError, ScatterError, type ShardFailure, type ShardKitError } from '../errors.js';
import { type AnyQueryBuilder, internalsOf } from '../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { mapWithConcurrency } from '../util/map-with-concurrency.js';
import { combineWriteResults } from './combine-results.js';
import type { Engine, Execution, ExecutionOptions } from './execute-plan.js';
import type { RoutingOptions, ShardRequest } from './shard-access.js';
import { shardStatements } from './shard-query.js';

export async function executeWrite(
  plan: QueryPlan,
  builder: AnyQueryBuilder,
  engine: Engine,
  routing: RoutingOptions,
  options: ExecutionOptions,
): Promise<Execution> {
  const shards = targetShards(plan.route);
  if (options.signal?.aborted) throw new QueryCancelledError(options.signal.reason);
  const request: ShardRequest = { intent: 'write', table: plan.table, method: plan.method, routing };
  const returning = internalsOf(builder)._single.returning !== undefined;
  const statementsOf = (shard: string) =>
    shardStatements(builder, plan, shard, engine.maxParameters).map((query: AnyQueryBuilder) => (returning ? query : countInsertedRows(query)));
  if (shards.length === 1) {
    const statements = statementsOf(shards[0]!);
    if (statements.length === 1) return { result: combineWriteResults(plan.method, returning, [await engine.access.run(shards[0]!, request, statements[0]!)]), missing: [] };
    const outcome = await engine.access.transact(shards[0]!, request, statements);
    if (outcome.committed !== true) throw outcome.error;
    return { result: combineWriteResults(plan.method, returning, outcome.results), missing: [] };
  }
  const outcomes = await mapWithConcurrency(shards, options.concurrency, (shard) => engine.access.transact(shard, request, statementsOf(shard)), {
    signal: options.signal,
  });
  const committed: string[] = [];
  const unknown: string[] = [];
  const failures: ShardFailure[] = [];
  const results: unknown[] = [];
  outcomes.forEach((outcome, index) => {
    const shard = shards[index]!;
    if (outcome.status === 'skipped') {
      failures.push({ shard, error: new QueryCancelledError(options.signal?.reason) });
    } else if (outcome.status === 'rejected') {
      failures.push({ shard, error: outcome.reason as ShardKitError });
    } else if (outcome.value.committed === true) {
      committed.push(shard);
      results.push(...outcome.value.results);
    } else {
      if (outcome.value.committed === 'unknown') unknown.push(shard);
      failures.push({ shard, error: outcome.value.error });
    }
  });
  if (failures.length > 0) throw new ScatterError(failures, committed, { write: true, unknown });
  return { result: combineWriteResults(plan.method, returning, results), missing: [] };
}
