/**
 * Decides how each subquery of a query is answered exactly, or refuses it naming the
 * construct. A subquery runs inside each shard's statement only when every row it can match
 * for an outer row lives on that row's shard:
 *
 *   co-located IN       users.whereIn('id', orders.select('user_id').where(...))
 *                       the outer shard key IN the subquery's own shard key (no LIMIT; GROUP BY,
 *                       HAVING and aggregates only when grouped by that key)
 *   co-located EXISTS   users.whereExists(orders.select(1).whereColumn('orders.user_id', 'users.id'))
 *                       correlated by equality of both shard keys (a top-level AND of its WHERE)
 *   inlined             a subquery that does not refer to the outer query (on a global table, or a
 *                       sharded one), in a top-level WHERE: the kit runs it first, across shards if
 *                       need be, and the outer query gets its values as a list (at most
 *                       `maxInlineValues`) or its EXISTS as true/false
 *
 * Everything else (a correlation on other columns, a subquery inside a where group that is not
 * co-located, CTEs, subqueries in the select list or in raw SQL) is refused.
 */
import { UnsupportedQueryError } from '../errors.js';
import { type AnyQueryBuilder, internalsOf, rawOf, type Statement } from '../knex/builder-internals.js';
import type { Expr } from './expression.js';
import { columnExpr, parseCondition } from './parse-expression.js';
import type { SqlFamily } from '../config/config-types.js';
import { parseTableRef, readQueryShape, type SubqueryRef, type TableRef } from './query-shape.js';

/** A subquery the kit evaluates before the query: the top-level WHERE statement holding it. */
export interface InlinedSubquery {
  statement: number;
  kind: 'in' | 'exists';
}

export interface SubqueryRules {
  family: SqlFamily;
  shardKeyOf(table: string): string | undefined;
  isGlobal(table: string): boolean;
}

interface Outer {
  table: TableRef;
  /** Undefined for a global table: then only subqueries on global tables run beside it. */
  shardKey: string | undefined;
}

export function planSubqueries(subqueries: readonly SubqueryRef[], outer: Outer, rules: SubqueryRules): InlinedSubquery[] {
  const inlined: InlinedSubquery[] = [];
  for (const subquery of subqueries) {
    if (subquery.kind === 'other') {
      throw new UnsupportedQueryError(subquery.construct, `a ${subquery.construct} is not routed: run it with kit.table() first, or use kit.forKey(key) for SQL on one shard`);
    }
    if (colocated(subquery, outer, rules)) continue;
    const refersOut = refersTo(subquery.query, outer.table);
    if (!refersOut && subquery.statement !== undefined) {
      inlined.push({ statement: subquery.statement, kind: subquery.kind });
      continue;
    }
    const table = parseTableRef(internalsOf(subquery.query)._single.table).name;
    throw new UnsupportedQueryError(
      subquery.kind === 'in' ? 'in subquery' : 'exists subquery',
      refersOut
        ? `the subquery on "${table}" refers to "${outer.table.qualifier}" but not by equal shard keys, so its rows may live on other shards`
        : `the subquery on "${table}" sits inside a where group; move it to a top-level where() so the kit can evaluate it first`,
    );
  }
  return inlined;
}

function colocated(subquery: Extract<SubqueryRef, { kind: 'in' | 'exists' }>, outer: Outer, rules: SubqueryRules): boolean {
  const shape = readQueryShape(subquery.query, rules.shardKeyOf);
  if (outer.shardKey === undefined) return rules.isGlobal(shape.table.name) && shape.subqueries.length === 0 && shape.joins.every((join) => rules.isGlobal(join.table.name));
  const outerKey = outer.shardKey;
  const innerKey = rules.shardKeyOf(shape.table.name);
  if (!innerKey || rules.isGlobal(shape.table.name) || shape.joins.length > 0 || shape.subqueries.length > 0) return false;
  // An OR at the top of its WHERE, or a union, lets rows of other keys (other shards) in.
  if (shape.mergeConstructs.includes('union') || internalsOf(subquery.query)._statements.some((statement) => statement.grouping === 'where' && statement.bool === 'or')) {
    return false;
  }
  const isInnerKey = (expr: Expr) => isColumn(expr, innerKey, [undefined, shape.table.qualifier, shape.table.name]);
  const isOuterKey = (expr: Expr, bare: boolean) => isColumn(expr, outerKey, bare ? [undefined, outer.table.qualifier, outer.table.name] : [outer.table.qualifier, outer.table.name]);
  const { _statements: statements } = internalsOf(subquery.query);
  if (subquery.kind === 'exists') {
    // Correlated on the shard keys: only inner rows of the outer row's key, all on its shard.
    return statements.some((statement) => statement.grouping === 'where' && statement.bool !== 'or' && !statement.not && correlates(statement, isInnerKey, (expr) => isOuterKey(expr, false), rules.family));
  }
  if (!isOuterKey(columnExpr(subquery.column), true) || shape.limit !== undefined || shape.offset !== undefined) return false;
  const selected = statements.filter((statement) => statement.grouping === 'columns');
  const only = selected.length === 1 && !Array.isArray(selected[0]!.value) ? selected[0]!.value : Array.isArray(selected[0]?.value) && selected[0]!.value.length === 1 ? selected[0]!.value[0] : undefined;
  if (typeof only !== 'string' || !isInnerKey(columnExpr(only))) return false;
  // Groups of one key value are whole on one shard; any other grouping spans shards.
  const groups = statements.filter((statement) => statement.grouping === 'group');
  const aggregates = shape.mergeConstructs.some((construct) => construct !== 'orderBy' && construct !== 'distinct');
  return !aggregates || groups.some((group) => group.type === 'groupByBasic' && [group.value].flat().some((value) => typeof value === 'string' && isInnerKey(columnExpr(value))));
}

function correlates(statement: Statement, isInnerKey: (expr: Expr) => boolean, isOuterKey: (expr: Expr) => boolean, family: SqlFamily): boolean {
  const pairs: [Expr, Expr][] = [];
  if (statement.type === 'whereBasic' && statement.asColumn && statement.operator === '=' && typeof statement.column === 'string' && typeof statement.value === 'string') {
    pairs.push([columnExpr(statement.column), columnExpr(statement.value)]);
  }
  const raw = statement.type === 'whereRaw' ? rawOf(statement.value) : undefined;
  if (raw) for (const conjunct of conjuncts(parseCondition(raw, family))) if (conjunct.kind === 'compare' && conjunct.op === '=') pairs.push([conjunct.left, conjunct.right]);
  return pairs.some(([a, b]) => (isInnerKey(a) && isOuterKey(b)) || (isInnerKey(b) && isOuterKey(a)));
}

function conjuncts(expr: Expr): Expr[] {
  return expr.kind === 'logic' && expr.op === 'and' ? [...conjuncts(expr.left), ...conjuncts(expr.right)] : [expr];
}

function isColumn(expr: Expr, name: string, qualifiers: readonly (string | undefined)[]): boolean {
  return expr.kind === 'column' && expr.name === name && qualifiers.includes(expr.table);
}

/** Whether any statement of the subquery names the outer table: it is correlated, so it cannot run alone. */
function refersTo(query: AnyQueryBuilder, outer: TableRef): boolean {
  const prefixes = [...new Set([outer.qualifier, outer.name])].map((name) => new RegExp(`(^|[^\\w$])["\`]?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["\`]?\\.`));
  const mentions = (value: unknown): boolean => {
    if (typeof value === 'string') return prefixes.some((prefix) => prefix.test(value));
    const raw = rawOf(value);
    if (raw) return mentions(raw.sql);
    if (Array.isArray(value)) return value.some(mentions);
    if (typeof value === 'function') return true;
    if (value && typeof value === 'object' && '_statements' in value) return internalsOf(value as unknown as AnyQueryBuilder)._statements.some(statementMentions);
    return false;
  };
  const statementMentions = (statement: Statement): boolean =>
    mentions(statement.column) || mentions(statement.value) || (statement.clauses ?? []).some(statementMentions);
  return internalsOf(query)._statements.some(statementMentions);
}
