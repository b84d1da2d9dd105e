/**
 * Reads a knex builder into the facts routing decides on: what it does, to which table, how
 * its WHERE constrains the shard key, and which constructs it uses that a plain concatenation
 * of per-shard results would get wrong. Pure: it inspects the builder and runs nothing.
 */
import type { Knex } from 'knex';
import { UnsupportedQueryError } from '../errors.js';
import {
  type AnyQueryBuilder,
  type BuilderMethod,
  internalsOf,
  isSqlExpression,
  isSubquery,
  type Statement,
} from './builder-internals.js';

export interface TableRef {
  name: string;
  /** The name columns are qualified with in this query: the alias if any, else the name. */
  qualifier: string;
}

/** How the WHERE clause constrains one column: each entry is a conjunct `col = v` or `col IN (...)`. */
export interface ColumnConstraint {
  /** The value lists of the top-level AND-ed `=`/`IN` conditions on the column (`=` is a list of one). */
  valueLists: unknown[][];
  /** False when an OR, a NOT or anything else could admit rows outside those lists. */
  exclusive: boolean;
}

export interface JoinShape {
  table: TableRef;
  /** Column pairs the ON clause equates with AND; empty if it has anything else. */
  equalities: [string, string][];
}

export interface QueryShape {
  method: BuilderMethod;
  table: TableRef;
  joins: JoinShape[];
  /** Constructs a concatenation of per-shard results cannot answer correctly, in query order. */
  mergeConstructs: string[];
  hasSubquery: boolean;
  limit: number | undefined;
  offset: number | undefined;
  insertRows: Record<string, unknown>[] | undefined;
  /** Columns an update or increment assigns, with their new values. */
  assignments: Record<string, unknown> | undefined;
}

export function readQueryShape(builder: AnyQueryBuilder): QueryShape {
  const { _method: method, _single: single, _statements: statements, client } = internalsOf(builder);
  const table = parseTableRef(single.table);
  const containsSubquery = subqueryDetector(client);
  return {
    method,
    table,
    joins: statements.filter((statement) => statement.grouping === 'join').map(readJoin),
    mergeConstructs: statements.flatMap(mergeConstructOf),
    hasSubquery: statements.some(containsSubquery) || isSubquery(single.insert),
    limit: single.limit,
    offset: single.offset,
    insertRows: method === 'insert' ? readInsertRows(single.insert) : undefined,
    assignments: single.update ?? single.counter,
  };
}

export function parseTableRef(table: unknown): TableRef {
  if (typeof table !== 'string') {
    throw new UnsupportedQueryError('table', 'the table must be named by a string, not a subquery or raw expression');
  }
  const match = /^\s*(\S+)(?:\s+as\s+(\S+))?\s*$/i.exec(table);
  if (!match) throw new UnsupportedQueryError('table', `cannot read the table name "${table}"`);
  const name = match[1]!;
  return { name, qualifier: match[2] ?? name };
}

/**
 * The top-level constraints on `column`. Only AND-ed, non-negated `=` and `IN` conditions with
 * literal values narrow the rows; a single OR anywhere makes the constraint non-exclusive.
 */
export function constraintsOn(builder: AnyQueryBuilder, table: TableRef, column: string): ColumnConstraint {
  const wheres = internalsOf(builder)._statements.filter((statement) => statement.grouping === 'where');
  const names = new Set(columnSpellings(table, column));
  const valueLists: unknown[][] = [];
  let exclusive = true;
  for (const statement of wheres) {
    if (statement.bool === 'or') exclusive = false;
    if (statement.not) continue;
    // knex writes whereIn(col, []) as `1 = 0`: a condition no key satisfies.
    if (isFalseLiteral(statement)) valueLists.push([]);
    if (typeof statement.column !== 'string' || !names.has(statement.column)) continue;
    const values = literalValues(statement);
    if (values) valueLists.push(values);
  }
  return { valueLists, exclusive: exclusive && valueLists.length > 0 };
}

function isFalseLiteral(statement: Statement): boolean {
  return statement.type === 'whereBasic' && statement.column === 1 && statement.operator === '=' && statement.value === 0;
}

/** The ways a query can name `column` of its main table: bare, by alias, by table name. */
export function columnSpellings(table: TableRef, column: string): string[] {
  return [...new Set([column, `${table.qualifier}.${column}`, `${table.name}.${column}`])];
}

function literalValues(statement: Statement): unknown[] | undefined {
  if (statement.type === 'whereBasic' && statement.operator === '=' && !isSqlExpression(statement.value)) {
    return [statement.value];
  }
  if (statement.type === 'whereIn' && Array.isArray(statement.value) && !statement.value.some(isSqlExpression)) {
    return statement.value;
  }
  return undefined;
}

function readJoin(statement: Statement): JoinShape {
  const table = parseTableRef(statement.table);
  const clauses = statement.clauses ?? [];
  const simple = clauses.every(
    (clause) =>
      clause.type === 'onBasic' &&
      clause.bool !== 'or' &&
      clause.operator === '=' &&
      typeof clause.column === 'string' &&
      typeof clause.value === 'string',
  );
  const equalities = simple ? clauses.map((clause) => [clause.column, clause.value] as [string, string]) : [];
  return { table, equalities };
}

const AGGREGATE_TYPES = new Set(['aggregate', 'aggregateRaw']);

function mergeConstructOf(statement: Statement): string[] {
  switch (statement.grouping) {
    case 'order':
      return ['orderBy'];
    case 'group':
      return ['groupBy'];
    case 'having':
      return ['having'];
    case 'union':
      return ['union'];
    case 'columns':
      if (AGGREGATE_TYPES.has(statement.type ?? '')) return [statement.method ?? 'aggregate'];
      if (statement.type === 'analytic') return ['window function'];
      if (statement.distinct) return ['distinct'];
      return [];
    default:
      return [];
  }
}

/** Finds subqueries anywhere, including inside `where(function () {...})` groups. */
function subqueryDetector(client: Knex.Client): (statement: Statement) => boolean {
  const containsSubquery = (statement: Statement): boolean => {
    // A union is refused as a construct of its own (see plan-query.ts).
    if (statement.grouping === 'union') return false;
    if (statement.grouping === 'with') return true;
    if (statement.type === 'whereExists' || statement.type === 'havingExists') return true;
    if ((statement.type === 'whereWrapped' || statement.type === 'havingWrapped') && typeof statement.value === 'function') {
      const group = client.queryBuilder();
      statement.value.call(group, group);
      return internalsOf(group)._statements.some(containsSubquery);
    }
    const values = Array.isArray(statement.value) ? statement.value : [statement.value];
    return values.some(isSubquery) || (statement.clauses ?? []).some(containsSubquery);
  };
  return containsSubquery;
}

function readInsertRows(insert: unknown): Record<string, unknown>[] {
  if (insert === undefined) return [];
  if (Array.isArray(insert)) return insert as Record<string, unknown>[];
  if (isSqlExpression(insert)) {
    throw new UnsupportedQueryError('insert from query', 'insert rows as objects so each can be routed by its shard key');
  }
  return [insert as Record<string, unknown>];
}
