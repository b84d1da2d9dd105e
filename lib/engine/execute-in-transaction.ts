/**
 * Runs a plan inside a routed transaction's database transaction (kit/routed-transaction.ts):
 * the statements the plan gives its one shard, on the transaction's connection, with the
 * result shapes of kit.table(). A plan that reaches any other shard is refused before anything
 * runs, naming both: a transaction lives on one shard.
 */
import type { Knex } from 'knex';
import { CrossShardTransactionError } from '../errors.js';
import { countInsertedRows } from '../knex/guarded-client.js';
import { type AnyQueryBuilder, bindToClient, internalsOf, READ_METHODS } from '../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import { combineWriteResults, emptyResult } from './combine-results.js';
import { shardQuery, shardStatements } from './shard-query.js';


export async function executeInTransaction(plan: QueryPlan, builder: AnyQueryBuilder, shard: string, trx: Knex.Transaction, maxParameters: number): Promise<unknown> {
  if (plan.merge || plan.lookupJoin || plan.inline) {
    throw new CrossShardTransactionError(plan.table, shard, targetShards(plan.route).filter((other) => other !== shard), 'it reads several shards');
  }
  const shards = targetShards(plan.route);
  const others = shards.filter((other) => other !== shard);
  if (others.length > 0) throw new CrossShardTransactionError(plan.table, shard, others);
  const returning = internalsOf(builder)._single.returning !== undefined;
  if (shards.length === 0) return emptyResult(plan.method, returning);
  const onTransaction = (query: AnyQueryBuilder) => bindToClient(query, trx.client as unknown as Knex.Client);
  if (READ_METHODS.has(plan.method)) return await onTransaction(shardQuery(builder, plan, shard));
  const results: unknown[] = [];
  for (const statement of shardStatements(builder, plan, shard, maxParameters)) {
    results.push(await onTransaction(returning ? statement : countInsertedRows(statement)));
  }
  return combineWriteResults(plan.method, returning, results);
}
