/**
 * Plans the merge of a select that reaches several shards (see merge-spec.ts). Pure: it reads
 * the builder's statements and decides what each shard is asked and how rows combine.
 *
 *   orders.orderBy('amount', 'desc').limit(10).offset(20)
 *     -> sort: each shard ORDER BY amount DESC LIMIT 30, heap merge, skip 20, take 10
 *   orders.select('status').count('* as n').avg('amount as mean').groupBy('status').having(raw('sum(amount)'), '>', 100)
 *     -> aggregate: each shard GROUP BY status with COUNT(*), SUM(amount), COUNT(amount), SUM(amount);
 *        groups combined, mean = SUM / COUNT, HAVING on the merged SUM
 *
 * Refused with UnsupportedQueryError naming the construct: window functions, raw ORDER BY,
 * GROUP BY or HAVING expressions it cannot evaluate, COUNT/SUM/AVG DISTINCT, selected columns
 * that are neither grouped nor aggregated, DISTINCT with aggregates.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import { type BuilderMethod, internalsOf, type AnyQueryBuilder, type Statement } from '../knex/builder-internals.js';
import type {
  AggregateFunction,
  AggregateOutput,
  GroupColumn,
  HavingTerm,
  MergeSpec,
  MergeSpecBase,
  ShardRewrite,
  SortKey,
} from './merge-spec.js';

const AGGREGATES = new Set<AggregateFunction>(['count', 'sum', 'min', 'max', 'avg']);
/** `count(*)`, `sum(orders.amount)`, as written in a raw HAVING or ORDER BY. */
const RAW_AGGREGATE = /^\s*(count|sum|min|max|avg)\s*\(\s*(\*|[A-Za-z_][\w.]*|"[^"]+"(?:\."[^"]+")?)\s*\)\s*$/i;

interface SelectedColumn {
  output: string;
  source: string;
  kind: 'column' | 'aggregate' | 'raw';
  fn?: AggregateFunction;
}

interface Selection {
  columns: SelectedColumn[];
  /** `*` (or no column list): every column of the joined tables comes back under its own name. */
  star: boolean;
  distinct: boolean;
}

export function planMerge(builder: AnyQueryBuilder, family: SqlFamily, tables: MergeSpecBase['tables']): MergeSpec {
  const { _method: method, _statements: statements, _single: single, client } = internalsOf(builder);
  const selection = readSelection(statements, client, family);
  const groupStatements = statements.filter((statement) => statement.grouping === 'group');
  const isAggregate = groupStatements.length > 0 || selection.columns.some((column) => column.kind === 'aggregate');
  const base = {
    tables,
    offset: single.offset ?? 0,
    ...(single.limit === undefined ? {} : { limit: single.limit }),
    result: resultShape(method, statements),
  };
  if (isAggregate) {
    if (selection.distinct) throw new UnsupportedQueryError('distinct', 'DISTINCT together with aggregates is not merged');
    return planAggregate(statements, selection, groupStatements, family, base);
  }
  const orderStatements = statements.filter((statement) => statement.grouping === 'order');
  if (statements.some((statement) => statement.grouping === 'having')) {
    throw new UnsupportedQueryError('having', 'HAVING without GROUP BY or aggregates is not merged');
  }
  const hidden: string[] = [];
  const addColumns: ShardRewrite['addColumns'] = [];
  const orderBy = orderStatements.map((statement, index) =>
    sortKey(statement, family, (value) => {
      const column = String(value);
      const found = findOutput(selection, column);
      if (found) return found;
      const alias = `__sk_o${index}`;
      addColumns.push({ expression: column, alias });
      hidden.push(alias);
      return { output: alias, source: column };
    }),
  );
  const shard: ShardRewrite = {
    addColumns,
    dropOrder: false,
    dropHaving: false,
    ...(base.limit === undefined ? {} : { limit: base.offset + base.limit }),
  };
  if (selection.distinct) {
    if (addColumns.length > 0) {
      throw new UnsupportedQueryError('distinct', 'with DISTINCT, ORDER BY may only use selected columns');
    }
    return { kind: 'distinct', columns: selection.columns.map((column) => column.output), shard, orderBy, hidden, ...base };
  }
  return { kind: orderBy.length > 0 ? 'sort' : 'concat', shard, orderBy, hidden, ...base };
}

function resultShape(method: BuilderMethod, statements: readonly Statement[]): MergeSpecBase['result'] {
  if (method === 'first') return { shape: 'first' };
  if (method !== 'pluck') return { shape: 'rows' };
  const pluck = statements.find((statement) => statement.grouping === 'columns' && statement.type === 'pluck');
  return { shape: 'pluck', column: outputName(String(pluck?.value)) };
}

function readSelection(statements: readonly Statement[], client: Knex.Client, family: SqlFamily): Selection {
  const selection: Selection = { columns: [], star: false, distinct: false };
  let listsColumns = false;
  for (const statement of statements) {
    if (statement.grouping !== 'columns') continue;
    if (statement.type === 'analytic') throw new UnsupportedQueryError('window function', 'window functions need every row of a partition on one shard');
    if (statement.type === 'aggregateRaw') throw new UnsupportedQueryError('raw aggregate', 'write aggregates with knex (count, sum, min, max, avg) so they can be merged');
    if (statement.distinct) selection.distinct = true;
    if (statement.type === 'aggregate') {
      selection.star = false;
      selection.columns.push(...aggregateColumns(statement, client, family));
      continue;
    }
    const values = Array.isArray(statement.value) ? statement.value : [statement.value];
    listsColumns ||= values.length > 0;
    if (values.some((value) => typeof value === 'string' && /(^|\.)\*$/.test(value.trim()))) selection.star = true;
    for (const value of values) selection.columns.push(...plainColumns(value));
  }
  if (!listsColumns && !selection.columns.some((column) => column.kind === 'aggregate')) selection.star = true;
  return selection;
}

function plainColumns(value: unknown): SelectedColumn[] {
  if (typeof value === 'string') {
    if (/(^|\.)\*$/.test(value.trim())) return [];
    const [source, alias] = splitAlias(value);
    return [{ output: alias ?? lastSegment(source), source, kind: 'column' }];
  }
  if (typeof value === 'object' && value !== null && !('toSQL' in value)) {
    return Object.entries(value as Record<string, unknown>).map(([alias, source]) => ({
      output: alias,
      source: String(source),
      kind: 'column' as const,
    }));
  }
  return [{ output: `raw:${String((value as { sql?: string })?.sql ?? value)}`, source: '', kind: 'raw' }];
}

function aggregateColumns(statement: Statement, client: Knex.Client, family: SqlFamily): SelectedColumn[] {
  const fn = statement.method as AggregateFunction;
  if (!AGGREGATES.has(fn)) throw new UnsupportedQueryError(String(statement.method), `${statement.method}() across shards is not merged`);
  if ((statement as { aggregateDistinct?: boolean }).aggregateDistinct) {
    throw new UnsupportedQueryError(`${fn} distinct`, `${fn.toUpperCase()}(DISTINCT ...) across shards is not merged (it would need every value on one node)`);
  }
  const entries: [string | undefined, string][] =
    typeof statement.value === 'object' && statement.value !== null
      ? Object.entries(statement.value as Record<string, string>)
      : [splitAlias(String(statement.value)).reverse() as [string | undefined, string]];
  return entries.map(([alias, source]) => ({
    output: alias ?? unaliasedAggregateName(fn, source, client, family),
    source,
    kind: 'aggregate',
    fn,
  }));
}

/** The column name a database gives an aggregate without alias: `count` on PostgreSQL, the expression text on MySQL. */
function unaliasedAggregateName(fn: AggregateFunction, source: string, client: Knex.Client, family: SqlFamily): string {
  if (family === 'postgres') return fn;
  const builder = client.queryBuilder() as unknown as Record<AggregateFunction, (column: string) => Knex.QueryBuilder>;
  const sql = builder[fn](source).toSQL().sql;
  return sql.replace(/^select\s+/i, '').replace(/\s+from\s+.*$/i, '');
}

function planAggregate(
  statements: readonly Statement[],
  selection: Selection,
  groupStatements: readonly Statement[],
  family: SqlFamily,
  base: Pick<MergeSpecBase, 'tables' | 'offset' | 'limit' | 'result'>,
): MergeSpec {
  if (selection.star) throw new UnsupportedQueryError('groupBy', 'select the grouped columns by name: * cannot be merged by group');
  const groups: GroupColumn[] = groupStatements.flatMap((statement) => {
    if (statement.type !== 'groupByBasic') throw new UnsupportedQueryError('raw group by', 'GROUP BY raw expressions are not merged');
    return (Array.isArray(statement.value) ? statement.value : [statement.value]).map(String);
  }).map((source, index) => ({ source, partial: `__sk_g${index}` }));
  const aggregates: AggregateOutput[] = [];
  const addAggregate = (fn: AggregateFunction, source: string, output: string, hidden: boolean): AggregateOutput => {
    const index = aggregates.length;
    const partials = fn === 'avg' ? [`__sk_a${index}_sum`, `__sk_a${index}_count`] : [`__sk_a${index}`];
    const aggregate = { output, fn, source, partials, hidden };
    aggregates.push(aggregate);
    return aggregate;
  };
  const outputs: string[] = [];
  for (const column of selection.columns) {
    outputs.push(column.output);
    if (column.kind === 'raw') throw new UnsupportedQueryError('raw column', 'raw select expressions cannot be merged by group');
    if (column.kind === 'aggregate') {
      addAggregate(column.fn!, column.source, column.output, false);
      continue;
    }
    const group = groups.find((candidate) => sameColumn(candidate.source, column.source));
    if (!group) {
      throw new UnsupportedQueryError('groupBy', `"${column.source}" is selected but neither grouped nor aggregated`);
    }
    group.output = column.output;
  }
  const resolve = (value: unknown): { output: string; source: string } => {
    const raw = rawAggregate(value);
    if (raw) {
      const existing = aggregates.find((aggregate) => aggregate.fn === raw.fn && sameColumn(aggregate.source, raw.source));
      const aggregate = existing ?? addAggregate(raw.fn, raw.source, `__sk_h${aggregates.length}`, true);
      return { output: aggregate.output, source: `${raw.fn}(${raw.source})` };
    }
    if (typeof value !== 'string') throw new UnsupportedQueryError('raw expression', 'only aggregates written as fn(column) can be evaluated after the merge');
    const aggregate = aggregates.find((candidate) => candidate.output === value && !candidate.hidden);
    if (aggregate) return { output: aggregate.output, source: `${aggregate.fn}(${aggregate.source})` };
    const group = groups.find((candidate) => candidate.output === value || sameColumn(candidate.source, value));
    if (group) return { output: group.output ?? group.partial, source: group.source };
    throw new UnsupportedQueryError('orderBy', `"${value}" is neither a grouped column nor a selected aggregate`);
  };
  const having = statements.filter((statement) => statement.grouping === 'having').map((statement) => havingTerm(statement, resolve));
  const orderBy = statements
    .filter((statement) => statement.grouping === 'order')
    .map((statement) => sortKey(statement, family, resolve));
  const replaceColumns: NonNullable<ShardRewrite['replaceColumns']> = [
    ...groups.map((group) => ({ expression: group.source, alias: group.partial })),
    ...aggregates.flatMap((aggregate) =>
      aggregate.fn === 'avg'
        ? [
            { expression: aggregate.source, alias: aggregate.partials[0]!, fn: 'sum' as const },
            { expression: aggregate.source, alias: aggregate.partials[1]!, fn: 'count' as const },
          ]
        : [{ expression: aggregate.source, alias: aggregate.partials[0]!, fn: aggregate.fn }],
    ),
  ];
  return {
    kind: 'aggregate',
    shard: { addColumns: [], replaceColumns, dropOrder: true, dropHaving: true },
    groups,
    aggregates,
    having,
    outputs,
    orderBy,
    // Merged groups are projected onto `outputs`, which drops every helper value.
    hidden: [],
    ...base,
  };
}

function havingTerm(statement: Statement, resolve: (value: unknown) => { output: string }): HavingTerm {
  const bool = statement.bool === 'or' ? 'or' : 'and';
  const not = statement.not === true;
  const column = resolve(statement.column).output;
  switch (statement.type) {
    case 'havingBasic': {
      const operator = String(statement.operator).toLowerCase();
      if (!['=', '<>', '!=', '<', '<=', '>', '>='].includes(operator)) {
        throw new UnsupportedQueryError('having', `HAVING operator ${operator} is not evaluated after the merge`);
      }
      return { bool, not, column, operator: operator as HavingTerm['operator'], value: literal(statement.value) };
    }
    case 'havingIn':
      return { bool, not, column, operator: 'in', value: (statement.value as unknown[]).map(literal) };
    case 'havingBetween':
      return { bool, not, column, operator: 'between', value: (statement.value as unknown[]).map(literal) };
    case 'havingNull':
      return { bool, not, column, operator: 'null', value: null };
    default:
      throw new UnsupportedQueryError('having', `HAVING of type ${statement.type} is not evaluated after the merge`);
  }
}

function literal(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && 'toSQL' in value) {
    throw new UnsupportedQueryError('having', 'HAVING compares with literal values only');
  }
  return value;
}

function sortKey(
  statement: Statement,
  family: SqlFamily,
  resolve: (value: unknown) => { output: string; source: string },
): SortKey {
  if (statement.type === 'orderByRaw') {
    throw new UnsupportedQueryError('raw orderBy', 'raw ORDER BY expressions cannot be evaluated by the merge; order by columns or aliases');
  }
  const value = statement.value;
  if (typeof value !== 'string' && !rawAggregate(value)) {
    throw new UnsupportedQueryError('raw orderBy', 'raw ORDER BY expressions cannot be evaluated by the merge; order by columns or aliases');
  }
  const direction = String((statement as { direction?: string }).direction ?? 'asc').toLowerCase() === 'desc' ? 'desc' : 'asc';
  const explicit = (statement as { nulls?: string }).nulls;
  const { output, source } = resolve(value);
  if (explicit === 'first' || explicit === 'last') {
    // knex has no NULLS FIRST/LAST for MySQL: it orders by a null test instead of the column.
    if (family === 'mysql') return { column: output, direction, nulls: 'last', source, test: explicit === 'last' ? 'is null' : 'is not null' };
    return { column: output, direction, nulls: explicit, source };
  }
  return { column: output, direction, nulls: defaultNulls(family, direction), source };
}

/** PostgreSQL sorts NULL as larger than any value, MySQL and MariaDB as smaller. */
function defaultNulls(family: SqlFamily, direction: 'asc' | 'desc'): 'first' | 'last' {
  const nullsLargest = family === 'postgres';
  return (direction === 'asc') === nullsLargest ? 'last' : 'first';
}

function findOutput(selection: Selection, value: string): { output: string; source: string } | undefined {
  const selected = selection.columns.find((column) => column.output === value) ?? selection.columns.find((column) => column.kind === 'column' && sameColumn(column.source, value));
  if (selected) return { output: selected.output, source: selected.source };
  if (selection.star) return { output: lastSegment(value), source: value };
  return undefined;
}

function rawAggregate(value: unknown): { fn: AggregateFunction; source: string } | undefined {
  if (typeof value !== 'object' || value === null || (value as { isRawInstance?: boolean }).isRawInstance !== true) return undefined;
  const raw = value as { sql: string; bindings?: unknown[] };
  if (raw.bindings && raw.bindings.length > 0) return undefined;
  const match = RAW_AGGREGATE.exec(raw.sql);
  if (!match) return undefined;
  return { fn: match[1]!.toLowerCase() as AggregateFunction, source: match[2]!.replaceAll('"', '') };
}

function splitAlias(value: string): [string, string | undefined] {
  const match = /^\s*(.+?)\s+as\s+(\S+)\s*$/i.exec(value);
  return match ? [match[1]!, match[2]!] : [value.trim(), undefined];
}

function lastSegment(column: string): string {
  return column.slice(column.lastIndexOf('.') + 1);
}

function outputName(value: string): string {
  const [source, alias] = splitAlias(value);
  return alias ?? lastSegment(source);
}

/** `amount` and `orders.amount` name the same column when only one of them is qualified. */
function sameColumn(a: string, b: string): boolean {
  if (a === b) return true;
  return (a.includes('.') !== b.includes('.')) && lastSegment(a) === lastSegment(b);
}
