/**
 * Runs a lookup join (planner/plan-lookup-join.ts): the outer table's rows through the kit,
 * then the joined table's rows whose join column is among their values, in batched `whereIn`
 * lookups routed like any query on that table, then a hash join in memory, ORDER BY, OFFSET,
 * LIMIT and the select list as one database would return them (a column name both tables
 * share takes the later table's value, as the drivers do).
 *
 * Equality of join values follows the column's type (exact numbers numerically, text by code
 * point, which is PostgreSQL's equality for deterministic collations). MySQL's usual collations
 * compare text case-insensitively, which the merge cannot reproduce: text join columns are
 * refused there.
 */
import type { SqlFamily } from '../config/config-types.js';
import type { ColumnClassifier, ColumnTypeLookup } from '../engine/column-types.js';
import { canonicalValue, type Row, rowComparator } from '../engine/merge/compare-values.js';
import { classOfSqlType } from '../engine/merge/expression-types.js';
import { MergeLimitError, UnsupportedQueryError } from '../errors.js';
import { type AnyQueryBuilder, copyBuilder, internalsOf, type Statement } from '../knex/builder-internals.js';
import type { LookupJoinSpec, LookupSide } from '../planner/plan-lookup-join.js';
import { sortKeyOf } from '../planner/plan-aggregate.js';
import { readOrder, splitAlias } from '../planner/read-clauses.js';

export interface LookupJoinParts {
  family: SqlFamily;
  columnTypes: ColumnClassifier;
  /** Runs a query through the kit: its rows. */
  run(query: AnyQueryBuilder): Promise<Row[]>;
}

interface Joined {
  outer: Row;
  inner: Row | undefined;
}

export async function runLookupJoin(builder: AnyQueryBuilder, spec: LookupJoinSpec, parts: LookupJoinParts): Promise<unknown> {
  const internals = internalsOf(builder);
  const tables = [spec.outer, spec.inner].map(({ table, qualifier }) => ({ name: table, qualifier }));
  const types = await parts.columnTypes.lookup(tables);
  const joinType = types(spec.outer.qualifier, spec.outer.column);
  if (parts.family === 'mysql' && (joinType === 'text' || types(spec.inner.qualifier, spec.inner.column) === 'text')) {
    throw new UnsupportedQueryError('join', 'a lookup join on a text column is refused on MySQL/MariaDB, whose collations compare text case-insensitively');
  }
  const outerRows = await parts.run(outerQuery(builder, spec));
  if (outerRows.length > spec.maxRows) throw new MergeLimitError(spec.maxRows, `a lookup join read more than ${spec.maxRows} rows of "${spec.outer.table}" (scatter.maxJoinRows)`);
  const valueClass = classOfSqlType(joinType);
  const keyOf = (value: unknown) => canonicalValue(value, valueClass);
  const values = new Map<string, unknown>();
  for (const row of outerRows) {
    const value = row[spec.outer.column];
    if (value !== null && value !== undefined) values.set(keyOf(value), value);
  }
  const matches = await innerRowsByKey(internals._statements, internals.client, spec, [...values.values()], keyOf, parts);
  const joined: Joined[] = [];
  for (const outer of outerRows) {
    const value = outer[spec.outer.column];
    const found = value === null || value === undefined ? undefined : matches.get(keyOf(value));
    if (found) for (const inner of found) joined.push({ outer, inner });
    else if (spec.type === 'left') joined.push({ outer, inner: undefined });
    // Many rows on both sides of one value multiply: the joined rows are bounded too.
    if (joined.length > spec.maxRows) throw new MergeLimitError(spec.maxRows, `a lookup join produced more than ${spec.maxRows} joined rows (scatter.maxJoinRows)`);
  }
  const sorted = sortJoined(joined, internals._statements, spec, types, parts.family);
  const offset = internals._single.offset ?? 0;
  const page = sorted.slice(offset, internals._single.limit === undefined ? undefined : offset + internals._single.limit);
  const project = await projection(internals._statements, spec, parts.columnTypes);
  const rows = page.map(project);
  if (internals._method === 'first') return rows[0];
  if (internals._method === 'pluck') {
    const pluck = internals._statements.find((statement) => statement.type === 'pluck');
    const [source, alias] = splitAlias(String(pluck?.value));
    const column = alias ?? source.slice(source.lastIndexOf('.') + 1);
    return rows.map((row) => row[column]);
  }
  return rows;
}

/** The outer table's rows with its own WHERE, every column, at most the bound and one more. */
function outerQuery(builder: AnyQueryBuilder, spec: LookupJoinSpec): AnyQueryBuilder {
  const query = copyBuilder(builder);
  const internals = internalsOf(query);
  internals._statements = internals._statements.filter(
    (statement, index) => statement.grouping === 'where' && !spec.innerWhere.includes(index),
  );
  internals._method = 'select';
  internals._single = { ...internals._single, limit: undefined, offset: undefined };
  const plain = query as unknown as { select(column: string): unknown; limit(count: number): unknown };
  plain.select(`${spec.outer.qualifier}.*`);
  plain.limit(spec.maxRows + 1);
  return query;
}

async function innerRowsByKey(
  statements: readonly Statement[],
  client: AnyQueryBuilder['client'],
  spec: LookupJoinSpec,
  values: readonly unknown[],
  keyOf: (value: unknown) => string,
  parts: LookupJoinParts,
): Promise<Map<string, Row[]>> {
  const byKey = new Map<string, Row[]>();
  const innerWhere = spec.innerWhere.map((index) => statements[index]!);
  let fetched = 0;
  for (let start = 0; start < values.length; start += spec.batchSize) {
    const rows = await parts.run(innerQuery(client, spec.inner, innerWhere, values.slice(start, start + spec.batchSize), spec.maxRows - fetched + 1));
    fetched += rows.length;
    if (fetched > spec.maxRows) throw new MergeLimitError(spec.maxRows, `a lookup join read more than ${spec.maxRows} rows of "${spec.inner.table}" (scatter.maxJoinRows)`);
    for (const row of rows) {
      const key = keyOf(row[spec.inner.column]);
      const list = byKey.get(key);
      if (list) list.push(row);
      else byKey.set(key, [row]);
    }
  }
  return byKey;
}

function innerQuery(client: AnyQueryBuilder['client'], inner: LookupSide, where: readonly Statement[], values: readonly unknown[], limit: number): AnyQueryBuilder {
  const from = inner.qualifier === inner.table ? inner.table : `${inner.table} as ${inner.qualifier}`;
  const query = client.queryBuilder().from(from).select(`${inner.qualifier}.*`);
  const internals = internalsOf(query as unknown as AnyQueryBuilder);
  internals._statements.push(...where);
  query.whereIn(`${inner.qualifier}.${inner.column}`, values as never[]).limit(limit);
  return query as unknown as AnyQueryBuilder;
}

function sortJoined(rows: Joined[], statements: readonly Statement[], spec: LookupJoinSpec, types: ColumnTypeLookup, family: SqlFamily): Joined[] {
  const order = readOrder(statements, family);
  if (order.length === 0) return rows;
  // Sort on flattened values: one key per ORDER BY item, read from its table's row.
  const keyed = rows.map((row) => {
    const values: Row = {};
    order.forEach((item, index) => {
      const expr = item.expr as { table: string; name: string };
      const side = expr.table === spec.inner.qualifier ? row.inner : row.outer;
      values[`k${index}`] = side?.[expr.name] ?? null;
    });
    return { row, values };
  });
  const keys = order.map((item, index) => sortKeyOf(`k${index}`, item.expr, item, family));
  const compare = rowComparator(keys, (key) => {
    const expr = key.expression as { table: string; name: string };
    return classOfSqlType(types(expr.table, expr.name));
  });
  return keyed.sort((a, b) => compare(a.values, b.values)).map((entry) => entry.row);
}

/** The select list over a joined pair of rows, in select order. */
async function projection(statements: readonly Statement[], spec: LookupJoinSpec, columnTypes: ColumnClassifier): Promise<(row: Joined) => Row> {
  const [outerColumns, innerColumns] = await Promise.all([columnTypes.columnNames(spec.outer.table), columnTypes.columnNames(spec.inner.table)]);
  type Part = (row: Joined, out: Row) => void;
  const whole = (side: 'outer' | 'inner', columns: readonly string[]): Part => (row, out) => {
    for (const column of columns) out[column] = row[side]?.[column] ?? null;
  };
  const parts: Part[] = [];
  // select('o.id as id'), select({ id: 'o.id' }): [source, alias] pairs in select order.
  const values = statements
    .filter((statement) => statement.grouping === 'columns')
    .flatMap((statement) => [statement.value].flat())
    .flatMap((value): [string, string | undefined][] =>
      typeof value === 'object' && value !== null ? Object.entries(value as Record<string, unknown>).map(([alias, source]) => [String(source), alias]) : [splitAlias(String(value))],
    );
  if (values.length === 0) parts.push(whole('outer', outerColumns), whole('inner', innerColumns));
  for (const [source, alias] of values) {
    const dot = source.lastIndexOf('.');
    const qualifier = source.slice(0, dot);
    const column = source.slice(dot + 1);
    const side = qualifier === spec.inner.qualifier ? 'inner' : 'outer';
    if (source === '*') parts.push(whole('outer', outerColumns), whole('inner', innerColumns));
    else if (column === '*') parts.push(whole(side, side === 'inner' ? innerColumns : outerColumns));
    else parts.push((row, out) => (out[alias ?? column] = row[side]?.[column] ?? null));
  }
  return (row) => {
    const out: Row = {};
    for (const part of parts) part(row, out);
    return out;
  };
}
