/**
 * Reads a knex builder into the facts routing decides on: what it does, to which table, how
 * its WHERE constrains the shard key, and which constructs it uses that a plain concatenation
 * of per-shard results would get wrong. Pure: it inspects the builder and runs nothing. It is
 * on every query's path, so it reads the statements in one pass and caches what depends only
 * on the table name.
 */
import type { Knex } from 'knex';
import { UnsupportedQueryError } from '../errors.js';
import {
  type AnyQueryBuilder,
  type BuilderMethod,
  internalsOf,
  isSqlExpression,
  isSubquery,
  rawOf,
  type Statement,
} from '../knex/builder-internals.js';

export interface TableRef {
  name: string;
  /** The name columns are qualified with in this query: the alias if any, else the name. */
  qualifier: string;
}

/** How the WHERE clause constrains the shard key: each entry is a conjunct `key = v` or `key IN (...)`. */
export interface KeyConstraint {
  /** The value lists of the top-level AND-ed `=`/`IN` conditions on the key (`=` is a list of one). */
  valueLists: unknown[][];
  /** False when an OR anywhere could admit rows outside those lists, or there are none. */
  exclusive: boolean;
  /** The ways this query spells the key column: bare, by alias, by table name. */
  spellings: readonly string[];
}

export interface JoinShape {
  table: TableRef;
  /** knex's join type: 'inner', 'left', 'left outer', 'right', ... */
  type: string;
  /** Column pairs the ON clause equates with AND; empty if it has anything else. */
  equalities: [string, string][];
}

/**
 * A subquery of the query: `where col [not] in (subquery)` or `where [not] exists (subquery)`
 * (`statement` is the index of a top-level WHERE statement, undefined inside a where group),
 * or any other place a query nests one (a CTE, a select value, a raw fragment with SELECT).
 */
export type SubqueryRef =
  | { kind: 'in'; statement: number | undefined; column: string; query: AnyQueryBuilder }
  | { kind: 'exists'; statement: number | undefined; query: AnyQueryBuilder }
  | { kind: 'other'; construct: string };

export interface QueryShape {
  method: BuilderMethod;
  table: TableRef;
  /** Present when the table has a shard key. */
  key: KeyConstraint | undefined;
  joins: JoinShape[];
  /** Constructs a concatenation of per-shard results cannot answer correctly, in query order. */
  mergeConstructs: string[];
  /** Every subquery, where it stands (see plan-subqueries.ts). */
  subqueries: SubqueryRef[];
  limit: number | undefined;
  offset: number | undefined;
  insertRows: Record<string, unknown>[] | undefined;
  /** Columns an update assigns, with their new values. */
  updates: Record<string, unknown> | undefined;
  /** Columns an increment or decrement changes, with the amounts. */
  counters: Record<string, unknown> | undefined;
  /** An insert's ON CONFLICT ... MERGE: what it updates (undefined: every inserted column). */
  upsert: { updates: unknown } | undefined;
}

export function readQueryShape(builder: AnyQueryBuilder, shardKeyOf: (table: string) => string | undefined): QueryShape {
  const { _method: method, _single: single, _statements: statements, client } = internalsOf(builder);
  const table = parseTableRef(single.table);
  const shardKey = shardKeyOf(table.name);
  const spellings = shardKey === undefined ? undefined : columnSpellings(table, shardKey);
  const valueLists: unknown[][] = [];
  let exclusive = true;
  const shape: QueryShape = {
    method,
    table,
    key: undefined,
    joins: [],
    mergeConstructs: [],
    subqueries: isSubquery(single.insert) ? [{ kind: 'other', construct: 'insert from query' }] : [],
    limit: single.limit,
    offset: single.offset,
    insertRows: method === 'insert' ? readInsertRows(single.insert) : undefined,
    updates: single.update,
    counters: single.counter,
    upsert: single.merge,
  };
  statements.forEach((statement, index) => {
    if (statement.grouping === 'where') {
      if (statement.bool === 'or') exclusive = false;
      if (spellings && !statement.not) {
        const values = keyValues(statement, spellings);
        if (values) valueLists.push(values);
      }
    } else if (statement.grouping === 'join') {
      shape.joins.push(readJoin(statement));
    } else {
      const construct = mergeConstructOf(statement);
      if (construct) shape.mergeConstructs.push(construct);
    }
    shape.subqueries.push(...subqueriesOf(statement, index, client));
  });
  if (spellings) shape.key = { valueLists, exclusive: exclusive && valueLists.length > 0, spellings };
  return shape;
}

const tableRefs = new Map<string, TableRef>();

export function parseTableRef(table: unknown): TableRef {
  if (typeof table !== 'string') {
    throw new UnsupportedQueryError('table', 'the table must be named by a string, not a subquery or raw expression');
  }
  const cached = tableRefs.get(table);
  if (cached) return cached;
  const match = /^\s*(\S+)(?:\s+as\s+(\S+))?\s*$/i.exec(table);
  if (!match) throw new UnsupportedQueryError('table', `cannot read the table name "${table}"`);
  const name = match[1]!;
  const ref = { name, qualifier: match[2] ?? name };
  if (tableRefs.size < 1000) tableRefs.set(table, ref);
  return ref;
}

const spellingsByTable = new Map<string, string[]>();

/** How a query may name `column` of `table`: bare, by its alias, by its name. */
export function columnSpellings(table: TableRef, column: string): string[] {
  const cacheKey = `${table.name} ${table.qualifier} ${column}`;
  let spellings = spellingsByTable.get(cacheKey);
  if (!spellings) {
    spellings = [...new Set([column, `${table.qualifier}.${column}`, `${table.name}.${column}`])];
    if (spellingsByTable.size < 1000) spellingsByTable.set(cacheKey, spellings);
  }
  return spellings;
}

/** The keys a WHERE statement admits, if it is `key = literal`, `key IN (literals)` or knex's `1 = 0`. */
function keyValues(statement: Statement, spellings: readonly string[]): unknown[] | undefined {
  if (statement.type === 'whereBasic') {
    // knex writes whereIn(col, []) as `1 = 0`: a condition no key satisfies.
    if (statement.column === 1 && statement.operator === '=' && statement.value === 0) return [];
    if (statement.operator === '=' && !statement.asColumn && spellings.includes(statement.column as string) && !isSqlExpression(statement.value)) {
      return [statement.value];
    }
    return undefined;
  }
  if (
    statement.type === 'whereIn' &&
    spellings.includes(statement.column as string) &&
    Array.isArray(statement.value) &&
    !statement.value.some(isSqlExpression)
  ) {
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
  return { table, type: String(statement.joinType ?? 'inner').toLowerCase(), equalities };
}

const AGGREGATE_TYPES = new Set(['aggregate', 'aggregateRaw']);

function mergeConstructOf(statement: Statement): string | undefined {
  switch (statement.grouping) {
    case 'order':
      return 'orderBy';
    case 'group':
      return 'groupBy';
    case 'having':
      return 'having';
    case 'union':
      return 'union';
    case 'columns':
      if (AGGREGATE_TYPES.has(statement.type ?? '')) return statement.method ?? 'aggregate';
      if (statement.type === 'analytic') return 'window function';
      return statement.distinct ? 'distinct' : undefined;
    default:
      return undefined;
  }
}

/** The subqueries of a statement, including those inside `where(function () {...})` groups. */
function subqueriesOf(statement: Statement, index: number | undefined, client: Knex.Client): SubqueryRef[] {
  // A union is refused as a construct of its own (see plan-query.ts).
  if (statement.grouping === 'union') return [];
  if (statement.grouping === 'with') return [{ kind: 'other', construct: 'with' }];
  if (statement.type === 'whereExists') return [{ kind: 'exists', statement: index, query: builderOf(statement.value, client) }];
  if (statement.type === 'havingExists') return [{ kind: 'other', construct: 'having exists' }];
  if ((statement.type === 'whereWrapped' || statement.type === 'havingWrapped') && typeof statement.value === 'function') {
    const group = client.queryBuilder();
    statement.value.call(group, group);
    return internalsOf(group)._statements.flatMap((inner) => subqueriesOf(inner, undefined, client));
  }
  if (statement.type === 'whereIn' && isSubquery(statement.value) && typeof statement.column === 'string') {
    return [{ kind: 'in', statement: index, column: statement.column, query: statement.value as AnyQueryBuilder }];
  }
  const values = Array.isArray(statement.value) ? statement.value : [statement.value];
  if (values.some(isSubquery) || isSubquery(statement.column)) return [{ kind: 'other', construct: `subquery in ${statement.grouping}` }];
  // A raw fragment that selects, or binds a query, is a subquery shardkit cannot see into.
  if (values.some(rawHoldsSubquery) || rawHoldsSubquery(statement.column)) return [{ kind: 'other', construct: 'subquery in raw SQL' }];
  return (statement.clauses ?? []).flatMap((clause) => subqueriesOf(clause, undefined, client));
}

function rawHoldsSubquery(value: unknown): boolean {
  const raw = rawOf(value);
  if (!raw) return false;
  if (/\bselect\b/i.test(raw.sql)) return true;
  const bindings = Array.isArray(raw.bindings) ? raw.bindings : raw.bindings && typeof raw.bindings === 'object' ? Object.values(raw.bindings) : [];
  return bindings.some((binding) => typeof binding === 'function' || isSubquery(binding) || rawHoldsSubquery(binding));
}

/** A subquery given as a builder, or as a function knex calls on a fresh builder. */
export function builderOf(value: unknown, client: Knex.Client): AnyQueryBuilder {
  if (typeof value !== 'function') return value as AnyQueryBuilder;
  const builder = client.queryBuilder();
  value.call(builder, builder);
  return builder as unknown as AnyQueryBuilder;
}

function readInsertRows(insert: unknown): Record<string, unknown>[] {
  if (insert === undefined) return [];
  if (Array.isArray(insert)) return insert as Record<string, unknown>[];
  if (isSqlExpression(insert)) {
    throw new UnsupportedQueryError('insert from query', 'insert rows as objects so each can be routed by its shard key');
  }
  return [insert as Record<string, unknown>];
}
