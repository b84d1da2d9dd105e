/**
 * Runs a plan: one query per target shard, in parallel, combined into one result. When any
 * shard fails, the others are still awaited so that the error can say which shards succeeded
 * (for a multi-shard write, those shards have committed their part).
 */
import { ScatterError, type ShardFailure, type ShardKitError } from '../errors.js';
import type { AnyQueryBuilder } from '../planner/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { combineResults, emptyResult } from './combine-results.js';
import type { QueryIntent, RoutingOptions, ShardAccess } from './shard-access.js';
import { shardQuery } from './shard-query.js';

const READS = new Set(['select', 'first', 'pluck', 'columnInfo']);

export async function executePlan(
  plan: QueryPlan,
  builder: AnyQueryBuilder,
  access: ShardAccess,
  routing: RoutingOptions,
): Promise<unknown> {
  const shards = targetShards(plan.route);
  if (shards.length === 0) return emptyResult(plan.method);
  const intent: QueryIntent = READS.has(plan.method) ? 'read' : 'write';
  const request = { intent, table: plan.table, method: plan.method, routing };
  // One shard: its result or its error as is.
  if (shards.length === 1) return combineResults(plan, [await access.run(shards[0]!, request, shardQuery(builder, plan, shards[0]!))]);
  const outcomes = await Promise.allSettled(shards.map((shard) => access.run(shard, request, shardQuery(builder, plan, shard))));
  const failures: ShardFailure[] = [];
  const succeeded: string[] = [];
  const parts: unknown[] = [];
  outcomes.forEach((outcome, index) => {
    const shard = shards[index]!;
    if (outcome.status === 'fulfilled') {
      succeeded.push(shard);
      parts.push(outcome.value);
    } else {
      failures.push({ shard, error: outcome.reason as ShardKitError });
    }
  });
  if (failures.length === 0) return combineResults(plan, parts);
  throw new ScatterError(failures, succeeded);
}
