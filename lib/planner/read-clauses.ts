/**
 * Reads the clauses of a knex select that the merge must understand, as expressions
 * (expression.ts): the select list (with the name each value comes back under), GROUP BY,
 * HAVING and ORDER BY. knex's own methods (select('a as b'), count('x as n'), having(col, op,
 * value), orderBy(col, dir, nulls)) and raw fragments (raw(), havingRaw(), orderByRaw()) are
 * read into the same trees, so a query means the same whichever way it was written.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import { rawOf, type Statement } from '../knex/builder-internals.js';
import type { Expr } from './expression.js';
import type { AggregateFunction } from './merge-spec.js';
import { columnExpr, MERGED_AGGREGATES, type OrderItem, parseCondition, parseOrderItems, parseSelectItems, refuseUnknownAggregates } from './parse-expression.js';


export interface SelectedItem {
  /** The key a row carries it under; undefined when the database names it (an unaliased raw expression). */
  output: string | undefined;
  expr: Expr;
}

export interface Selection {
  items: SelectedItem[];
  /** The stars of the select list: '' for `*`, the qualifier for `orders.*`. No column list is `*`. */
  stars: string[];
  distinct: boolean;
}

export function readSelection(statements: readonly Statement[], client: Knex.Client, family: SqlFamily): Selection {
  const selection: Selection = { items: [], stars: [], distinct: false };
  let listsColumns = false;
  for (const statement of statements) {
    if (statement.grouping !== 'columns') continue;
    if (statement.type === 'analytic') throw new UnsupportedQueryError('window function', 'window functions need every row of a partition on one shard');
    if ((statement as { distinctOn?: boolean }).distinctOn) throw new UnsupportedQueryError('distinctOn', 'DISTINCT ON keeps one row per key of every shard; it is not merged across shards');
    if (statement.distinct) selection.distinct = true;
    if (statement.type === 'aggregate' || statement.type === 'aggregateRaw') {
      listsColumns = true;
      selection.items.push(...aggregateItems(statement, client, family));
      continue;
    }
    const values = Array.isArray(statement.value) ? statement.value : [statement.value];
    for (const value of values) {
      listsColumns = true;
      readSelectValue(value, selection, family);
    }
  }
  if (!listsColumns) selection.stars.push('');
  return selection;
}

function readSelectValue(value: unknown, selection: Selection, family: SqlFamily): void {
  const raw = rawOf(value);
  if (raw) {
    for (const item of parseSelectItems(raw, family)) {
      refuseUnknownAggregates(item.expr);
      selection.items.push({ output: item.alias ?? (item.expr.kind === 'column' ? item.expr.name : undefined), expr: item.expr });
    }
    return;
  }
  if (typeof value === 'string') {
    const trimmed = value.trim();
    const star = /^(?:(.+)\.)?\*$/.exec(trimmed);
    if (star) {
      selection.stars.push(star[1] ?? '');
      return;
    }
    const [source, alias] = splitAlias(trimmed);
    selection.items.push({ output: alias ?? lastSegment(source), expr: columnExpr(source) });
    return;
  }
  if (typeof value === 'object' && value !== null && !('toSQL' in value)) {
    for (const [alias, source] of Object.entries(value as Record<string, unknown>)) selection.items.push({ output: alias, expr: columnExpr(String(source)) });
    return;
  }
  throw new UnsupportedQueryError('select', 'a select value that is not a column, an object of aliases or knex.raw() cannot be merged');
}

function aggregateItems(statement: Statement, client: Knex.Client, family: SqlFamily): SelectedItem[] {
  const fn = statement.method as AggregateFunction;
  if (!MERGED_AGGREGATES.has(fn)) throw new UnsupportedQueryError(String(statement.method), `${statement.method}() across shards is not merged`);
  const distinct = statement.aggregateDistinct === true;
  const raw = rawOf(statement.value);
  if (raw) {
    const [argument] = parseSelectItems(raw, family);
    const expr: Expr = { kind: 'aggregate', fn, distinct, argument: argument!.expr };
    return [{ output: statement.alias ?? unaliasedAggregateName(fn, raw.sql, client, family), expr }];
  }
  if (Array.isArray(statement.value)) throw new UnsupportedQueryError(`${fn} of several columns`, `${fn}() of a column list is not merged; aggregate one column`);
  const entries: [string | undefined, string][] =
    typeof statement.value === 'object' && statement.value !== null
      ? Object.entries(statement.value as Record<string, string>)
      : [swap(splitAlias(String(statement.value ?? '*')))];
  return entries.map(([alias, source]) => {
    const argument: Expr | '*' = source.trim() === '*' ? '*' : columnExpr(source.trim());
    return {
      output: alias ?? statement.alias ?? unaliasedAggregateName(fn, source, client, family),
      expr: { kind: 'aggregate', fn, distinct, argument },
    };
  });
}

function swap([source, alias]: [string, string | undefined]): [string | undefined, string] {
  return [alias, source];
}

/** The column name a database gives an aggregate without alias: `count` on PostgreSQL, the expression text on MySQL. */
function unaliasedAggregateName(fn: AggregateFunction, source: string, client: Knex.Client, family: SqlFamily): string {
  if (family === 'postgres') return fn;
  const builder = client.queryBuilder() as unknown as Record<AggregateFunction, (column: string) => Knex.QueryBuilder>;
  const sql = builder[fn](source).toSQL().sql;
  return sql.replace(/^select\s+/i, '').replace(/\s+from\s+.*$/i, '');
}

/** The GROUP BY expressions, in order. */
export function readGroups(statements: readonly Statement[], family: SqlFamily): Expr[] {
  return statements
    .filter((statement) => statement.grouping === 'group')
    .flatMap((statement) => {
      const raw = rawOf(statement.value);
      if (statement.type === 'groupByRaw' || raw) return parseSelectItems(raw ?? { sql: String(statement.value) }, family).map((item) => item.expr);
      return (Array.isArray(statement.value) ? statement.value : [statement.value]).map((value) => columnExpr(String(value)));
    });
}

/** The ORDER BY items, in order, with knex's direction and NULLS placement. */
export function readOrder(statements: readonly Statement[], family: SqlFamily): (OrderItem & { knexNulls: boolean })[] {
  return statements
    .filter((statement) => statement.grouping === 'order')
    .flatMap((statement) => {
      const raw = rawOf(statement.value);
      const direction = String(statement.direction ?? '').toLowerCase() === 'desc' ? 'desc' : statement.direction === undefined ? undefined : 'asc';
      const nulls = statement.nulls === 'first' || statement.nulls === 'last' ? statement.nulls : undefined;
      if (statement.type === 'orderByRaw' || raw) {
        return parseOrderItems(raw ?? { sql: String(statement.value) }, family).map((item) => {
          if (item.expr.kind === 'literal' && item.expr.type === 'number') {
            throw new UnsupportedQueryError('orderBy', 'ORDER BY a column position is not merged; order by the column or its alias');
          }
          return { ...item, direction: item.direction ?? direction, knexNulls: false };
        });
      }
      if (typeof statement.value === 'number') throw new UnsupportedQueryError('orderBy', 'ORDER BY a column position is not merged; order by the column or its alias');
      if (typeof statement.value !== 'string') throw new UnsupportedQueryError('orderBy', 'ORDER BY a subquery cannot be merged');
      return [{ expr: columnExpr(statement.value), direction, nulls, knexNulls: nulls !== undefined }];
    });
}

/** The HAVING clause as one condition (AND binding tighter than OR, as SQL reads knex's output). */
export function readHaving(statements: readonly Statement[], family: SqlFamily): Expr | undefined {
  let disjunction: Expr | undefined;
  let conjunction: Expr | undefined;
  for (const statement of statements) {
    if (statement.grouping !== 'having') continue;
    let term = havingTerm(statement, family);
    if (statement.not) term = { kind: 'not', operand: term };
    if (statement.bool === 'or' && conjunction) {
      disjunction = disjunction ? { kind: 'logic', op: 'or', left: disjunction, right: conjunction } : conjunction;
      conjunction = term;
    } else {
      conjunction = conjunction ? { kind: 'logic', op: 'and', left: conjunction, right: term } : term;
    }
  }
  if (!conjunction) return undefined;
  return disjunction ? { kind: 'logic', op: 'or', left: disjunction, right: conjunction } : conjunction;
}

const HAVING_OPERATORS: Record<string, '=' | '<>' | '<' | '<=' | '>' | '>='> = { '=': '=', '<>': '<>', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };

function havingTerm(statement: Statement, family: SqlFamily): Expr {
  const operand = () => operandOf(statement.column, family);
  switch (statement.type) {
    case 'havingBasic': {
      const op = HAVING_OPERATORS[String(statement.operator).toLowerCase()];
      if (!op) throw new UnsupportedQueryError('having', `HAVING operator ${String(statement.operator)} is not evaluated after the merge`);
      return { kind: 'compare', op, left: operand(), right: operandOf(statement.value, family, true) };
    }
    case 'havingIn':
      return { kind: 'in', operand: operand(), list: (statement.value as unknown[]).map((value) => operandOf(value, family, true)), negated: false };
    case 'havingBetween': {
      const [low, high] = statement.value as unknown[];
      return { kind: 'between', operand: operand(), low: operandOf(low, family, true), high: operandOf(high, family, true), negated: false };
    }
    case 'havingNull':
      return { kind: 'isNull', operand: operand(), negated: false };
    case 'havingRaw':
      return parseCondition(rawOf(statement.value)!, family);
    default:
      throw new UnsupportedQueryError('having', `HAVING of type ${statement.type} is not evaluated after the merge`);
  }
}

/** A HAVING operand: a column name, a raw expression, or (as a value) what the caller bound. */
function operandOf(value: unknown, family: SqlFamily, isValue = false): Expr {
  const raw = rawOf(value);
  if (raw) return parseSelectItems(raw, family)[0]!.expr;
  if (isValue) {
    if (typeof value === 'object' && value !== null && 'toSQL' in value) throw new UnsupportedQueryError('having', 'HAVING compares with values or raw expressions, not subqueries');
    return { kind: 'value', value };
  }
  return columnExpr(String(value));
}

export function splitAlias(value: string): [string, string | undefined] {
  const match = /^\s*(.+?)\s+as\s+(\S+)\s*$/i.exec(value);
  return match ? [match[1]!, match[2]!] : [value.trim(), undefined];
}

export function lastSegment(column: string): string {
  return column.slice(column.lastIndexOf('.') + 1);
}
