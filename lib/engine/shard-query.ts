/**
 * The query one shard runs for a plan: the caller's builder with this shard's `IN` keys, this
 * shard's insert rows, and, for a multi-shard select, the rewrite its merge needs (helper
 * columns, partial aggregates, no ORDER BY or HAVING where the merge does them, LIMIT
 * offset + limit). A select that merges always runs as a plain select returning rows.
 */
import type { Knex } from 'knex';
import { type AnyQueryBuilder, copyBuilder, internalsOf, type Statement } from '../knex/builder-internals.js';
import type { ShardColumn, ShardRewrite } from '../planner/merge-spec.js';
import type { QueryPlan } from '../planner/query-plan.js';
import { withField } from '../util/with-field.js';

/**
 * The statements of a write's part on one shard: its query, or for an insert whose rows need
 * more bound parameters than one statement may carry (`maxParameters`), one insert per slice.
 */
export function shardStatements(builder: AnyQueryBuilder, plan: QueryPlan, shard: string, maxParameters: number): AnyQueryBuilder[] {
  const query = shardQuery(builder, plan, shard);
  const rows = internalsOf(query)._single.insert;
  if (plan.method !== 'insert' || !Array.isArray(rows) || rows.length < 2) return [query];
  // knex writes every row with the union of the rows' columns (DEFAULT where one lacks a column).
  const columns = new Set<string>();
  for (const row of rows as Record<string, unknown>[]) for (const column of Object.keys(row)) columns.add(column);
  const rowsPerStatement = Math.max(1, Math.floor(maxParameters / Math.max(1, columns.size)));
  if (rows.length <= rowsPerStatement) return [query];
  const statements: AnyQueryBuilder[] = [];
  for (let start = 0; start < rows.length; start += rowsPerStatement) {
    const slice = copyBuilder(query);
    const internals = internalsOf(slice);
    internals._single = { ...internals._single, insert: rows.slice(start, start + rowsPerStatement) };
    statements.push(slice);
  }
  return statements;
}

/**
 * The query a shard runs for a read through ShardAccess, which never changes it: the caller's
 * builder itself when the shard runs it as written (knex's clone costs a point read several
 * microseconds), else its copy with this shard's keys or merge rewrite.
 */
export function shardReadQuery(builder: AnyQueryBuilder, plan: QueryPlan, shard: string): AnyQueryBuilder {
  return plan.keysByShard || plan.merge ? shardQuery(builder, plan, shard) : builder;
}

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
    const list = Array.isArray(all) ? all : [all];
    const slotted = plan.insertSlots;
    // The caller's rows are never changed: a slot goes into a copy of its row.
    const rowOf = slotted ? (index: number) => withField(list[index]!, slotted.column, slotted.slots[index]) : (index: number) => list[index];
    internals._single = { ...internals._single, insert: Array.isArray(all) || slotted ? rows.map(rowOf) : all };
  }
  if (plan.merge) rewriteForMerge(query, plan.merge.shard);
  return query;
}

function rewriteForMerge(query: AnyQueryBuilder, rewrite: ShardRewrite): void {
  const internals = internalsOf(query);
  const keep = (statement: Statement) =>
    !(rewrite.replaceColumns && statement.grouping === 'columns') &&
    !(rewrite.dropOrder && statement.grouping === 'order') &&
    !(rewrite.dropHaving && statement.grouping === 'having');
  // pluck() and first() become a plain select: the merge needs whole rows and shapes the result.
  internals._statements = internals._statements
    .filter(keep)
    .map((statement) => (statement.type === 'pluck' ? { grouping: 'columns', value: [statement.value] } : statement));
  internals._method = 'select';
  internals._single = { ...internals._single, limit: undefined, offset: undefined };
  const builder = query as Knex.QueryBuilder;
  if (rewrite.limit !== undefined) builder.limit(rewrite.limit);
  const client = internals.client;
  // Aliases are shardkit's own (`__sk_...`); column names and values stay ?? and ? bindings.
  const column = ({ sql, alias }: ShardColumn) => client.raw(`${sql.sql} as ??`, [...sql.bindings, alias]);
  for (const replaced of rewrite.replaceColumns ?? []) builder.select(column(replaced));
  if (rewrite.addColumns.length > 0 && !internals._statements.some((statement) => statement.grouping === 'columns')) {
    builder.select('*');
  }
  for (const added of rewrite.addColumns) builder.select(column(added));
  for (const group of rewrite.addGroupBy ?? []) builder.groupByRaw(group.sql, group.bindings as Knex.RawBinding[]);
}
