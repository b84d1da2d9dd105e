/**
 * Runs a plan inside a routed transaction's database transaction (kit/routed-transaction.ts):
 * the statements the plan gives its one shard, on the transaction's connection, with the
 * result shapes of kit.table(). `refuseOtherShards` is the check that comes first (the caller
 * runs it once per statement): a plan that reaches any other shard is refused before anything
 * runs, naming both, for a transaction lives on one shard.
 */
import type { Knex } from 'knex';
import { CrossShardTransactionError } from '../errors.js';
import { countInsertedRows } from '../knex/guarded-client.js';
import { type AnyQueryBuilder, bindToClient, internalsOf, READ_METHODS } from '../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { combineWriteResults, emptyResult } from './combine-results.js';
import { shardQuery, shardStatements } from './shard-query.js';

export async function executeInTransaction(plan: QueryPlan, builder: AnyQueryBuilder, shard: string, trx: Knex.Transaction, maxParameters: number): Promise<unknown> {
  if (targetShards(plan.route).length === 0) return emptyResult(plan.method, internalsOf(builder)._single.returning !== undefined);
  return executeShardPart(plan, builder, shard, (query) => bindToClient(query, trx.client as unknown as Knex.Client), maxParameters);
}

/** `shard`'s statements of a single-shard plan, each run as `on` binds it (a transaction, a held connection). */
export async function executeShardPart(plan: QueryPlan, builder: AnyQueryBuilder, shard: string, on: (query: AnyQueryBuilder) => AnyQueryBuilder, maxParameters: number): Promise<unknown> {
  const returning = internalsOf(builder)._single.returning !== undefined;
  if (READ_METHODS.has(plan.method)) return await on(shardQuery(builder, plan, shard));
  const results: unknown[] = [];
  for (const statement of shardStatements(builder, plan, shard, maxParameters)) {
    results.push(await on(returning ? statement : countInsertedRows(statement)));
  }
  return combineWriteResults(plan.method, returning, results);
}

/** Refuses a plan that reaches a shard other than the transaction's, naming both. */
export function refuseOtherShards(plan: QueryPlan, shard: string): void {
  const others = targetShards(plan.route).filter((other) => other !== shard);
  if (plan.merge || plan.lookupJoin || plan.inline) throw new CrossShardTransactionError(plan.table, shard, others, 'it reads several shards');
  if (others.length > 0) throw new CrossShardTransactionError(plan.table, shard, others);
}
