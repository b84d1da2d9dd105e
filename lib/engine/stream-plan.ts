/**
 * Streams a select: rows are yielded as they merge, so memory stays bounded by the number of
 * shards (and each driver's stream buffer), not by the result. One shard streams straight
 * through; several merge through merge/merge-rows.ts (a heap for ORDER BY; aggregates and
 * DISTINCT collect their groups first, bounded by the number of groups).
 */
import { UnsupportedQueryError } from '../errors.js';
import type { AnyQueryBuilder } from '../knex/builder-internals.js';
import { type QueryPlan, targetShards } from '../planner/query-plan.js';
import type { Engine } from './execute-plan.js';
import type { Row } from './merge/compare-values.js';
import { streamMerged } from './merge/merge-rows.js';
import type { RoutingOptions, ShardRequest } from './shard-access.js';
import { shardReadQuery } from './shard-query.js';

export async function* streamPlan(plan: QueryPlan, builder: AnyQueryBuilder, engine: Engine, routing: RoutingOptions): AsyncGenerator<Row> {
  if (plan.method !== 'select') {
    throw new UnsupportedQueryError('stream', `stream() reads the rows of a select; ${plan.method} has no rows to stream`);
  }
  const shards = targetShards(plan.route);
  const request: ShardRequest = { intent: 'read', table: plan.table, method: plan.method, routing };
  const sources = shards.map((shard) => engine.access.stream(shard, request, shardReadQuery(builder, plan, shard)));
  if (!plan.merge) {
    for (const source of sources) yield* source;
    return;
  }
  const columnType = await engine.columnTypes.lookup(plan.merge.tables);
  yield* streamMerged(plan.merge, sources, { family: engine.family, columnType, bigintsAs: engine.bigintsAs });
}
