/**
 * The query one shard runs for a plan: the caller's builder with this shard's `IN` keys, this
 * shard's insert rows, and the LIMIT of a concatenated window (offset + limit, no offset).
 */
import { type AnyQueryBuilder, copyBuilder, internalsOf } from '../planner/builder-internals.js';
import type { QueryPlan } from '../planner/query-plan.js';

export function shardQuery(builder: AnyQueryBuilder, plan: QueryPlan, shard: string): AnyQueryBuilder {
  const query = copyBuilder(builder);
  const internals = internalsOf(query);
  const keys = plan.keysByShard?.[shard];
  if (keys && plan.keyColumns) {
    const columns = new Set(plan.keyColumns);
    internals._statements = internals._statements.map((statement) =>
      statement.type === 'whereIn' && !statement.not && typeof statement.column === 'string' && columns.has(statement.column)
        ? { ...statement, value: keys }
        : statement,
    );
  }
  const rows = plan.rowsByShard?.[shard];
  if (rows) {
    const all = internals._single.insert as Record<string, unknown>[] | Record<string, unknown>;
    internals._single = { ...internals._single, insert: Array.isArray(all) ? rows.map((index) => all[index]) : all };
  }
  if (plan.window) {
    const { offset, limit } = plan.window;
    internals._single = { ...internals._single, offset: undefined, limit: limit === undefined ? undefined : offset + limit };
  }
  return query;
}
