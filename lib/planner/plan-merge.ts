/**
 * Plans the merge of a select that reaches several shards (see merge-spec.ts). Pure: it reads
 * the builder's statements and decides what each shard is asked and how rows combine.
 *
 *   orders.orderBy('amount', 'desc').limit(10).offset(20)
 *     -> sort: each shard ORDER BY amount DESC LIMIT 30, heap merge, skip 20, take 10
 *   orders.orderByRaw('lower(name)')
 *     -> sort: each shard also selects lower(name) as a hidden column the heap merges on
 *   orders.select('status').count('* as n').groupBy('status').havingRaw('count(*) > ?', [1])
 *     -> aggregate (plan-aggregate.ts)
 *   orders.select('user_id').count('* as n').groupBy('user_id')   (user_id: the shard key)
 *     -> sort or concat: every group lives on one shard, so each shard's groups are final
 *
 * The merge only ever reads a value from a row under a name the query gives it: a sort key
 * that is not a selected column under a unique name is fetched as a hidden column, never
 * assumed to be in the row (a joined table's `*` may not hold it, or hold another table's).
 */
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import { type AnyQueryBuilder, type BuilderMethod, internalsOf, type Statement } from '../knex/builder-internals.js';
import { containsAggregate, type Expr } from './expression.js';
import type { MergeSpec, MergeSpecBase, ShardColumn, SortKey } from './merge-spec.js';
import { planAggregate, sameExpression, sortKeyOf } from './plan-aggregate.js';
import { refuseUnknownFunctions } from './parse-expression.js';
import { printExpression } from './print-expression.js';
import { lastSegment, readGroups, readHaving, readOrder, readSelection, type Selection, splitAlias } from './read-clauses.js';

export interface MergeRules {
  family: SqlFamily;
  /** The tables of the query, main table first. */
  tables: MergeSpecBase['tables'];
  /** The main table's shard-key column. */
  shardKey: string;
  /** Rows one shard may be asked to return for a merge (see MergeSpecBase.maxShardRows). */
  maxShardRows: number;
}

export function planMerge(builder: AnyQueryBuilder, rules: MergeRules): MergeSpec {
  const { _method: method, _statements: statements, _single: single, client } = internalsOf(builder);
  const selection = readSelection(statements, client, rules.family);
  const groups = readGroups(statements, rules.family);
  const having = readHaving(statements, rules.family);
  const order = readOrder(statements, rules.family);
  const offset = single.offset ?? 0;
  const base = {
    tables: rules.tables,
    offset,
    ...(single.limit === undefined ? {} : { limit: single.limit }),
    result: resultShape(method, statements),
  };
  const aggregates = groups.length > 0 || selection.items.some((item) => containsAggregate(item.expr));
  if (aggregates && selection.distinct) throw new UnsupportedQueryError('distinct', 'DISTINCT together with aggregates is not merged');
  if (aggregates && !groupedByShardKey(groups, rules)) {
    const aggregateRules = { family: rules.family, isShardKey: (expr: Expr) => isShardKey(expr, rules) };
    return planAggregate({ selection, groups, having, order }, aggregateRules, { ...base, maxShardRows: rules.maxShardRows });
  }
  if (!aggregates && having) throw new UnsupportedQueryError('having', 'HAVING without GROUP BY or aggregates is not merged');
  // An OFFSET makes every shard send rows nobody receives; a plain LIMIT asks for what it returns.
  if (base.limit !== undefined && offset > 0 && offset + base.limit > rules.maxShardRows) {
    throw new UnsupportedQueryError(
      'offset',
      `OFFSET ${offset} LIMIT ${base.limit} would ask every shard for ${offset + base.limit} rows (bound: scatter.maxShardRows = ${rules.maxShardRows}); ` +
        'walk deep pages with kit.paginate() (keyset pagination), which costs the same on every page',
    );
  }
  const hidden: string[] = [];
  const addColumns: ShardColumn[] = [];
  const orderBy = order.map((item, index): SortKey => {
    if (!aggregates && containsAggregate(item.expr)) throw new UnsupportedQueryError('orderBy', 'ORDER BY an aggregate needs GROUP BY or an aggregate select');
    refuseUnknownFunctions(item.expr, 'how its values compare');
    const output = outputFor(item.expr, selection, rules.tables);
    if (output) return sortKeyOf(output.name, output.expr, item, rules.family);
    const alias = `__sk_o${index}`;
    addColumns.push({ sql: printExpression(item.expr), alias });
    hidden.push(alias);
    return sortKeyOf(alias, item.expr, item, rules.family);
  });
  const shardLimit = base.limit === undefined ? undefined : offset + base.limit;
  if (selection.distinct) {
    if (addColumns.length > 0) throw new UnsupportedQueryError('distinct', 'with DISTINCT, ORDER BY may only use selected columns');
    if (selection.stars.length > 0) throw new UnsupportedQueryError('distinct', 'DISTINCT * cannot be merged: name the columns');
    const limit = shardLimit ?? rules.maxShardRows + 1;
    const shard = { addColumns, dropOrder: false, dropHaving: false, limit };
    if (selection.items.some((item) => item.output === undefined)) throw new UnsupportedQueryError('distinct', 'give every raw select expression an alias');
    const columns = selection.items.map((item) => item.output!);
    const expressions = selection.items.map((item) => item.expr);
    return { kind: 'distinct', columns, expressions, shard, orderBy, hidden, ...base, maxShardRows: rules.maxShardRows };
  }
  const shard = { addColumns, dropOrder: false, dropHaving: false, ...(shardLimit === undefined ? {} : { limit: shardLimit }) };
  return { kind: orderBy.length > 0 ? 'sort' : 'concat', shard, orderBy, hidden, ...base };
}

/** True when a select aggregates, so that it returns a row even where no row matches. */
export function aggregatesRows(builder: AnyQueryBuilder, family: SqlFamily): boolean {
  const { _statements: statements, client } = internalsOf(builder);
  if (statements.some((statement) => statement.grouping === 'group')) return false;
  return readSelection(statements, client, family).items.some((item) => containsAggregate(item.expr));
}

/** Each group holds rows of one shard-key value, so of one shard, when the shard key is grouped. */
function groupedByShardKey(groups: readonly Expr[], rules: MergeRules): boolean {
  return groups.some((group) => isShardKey(group, rules));
}

/** The main table's shard-key column, spelled bare or qualified. */
export function isShardKey(expr: Expr, rules: Pick<MergeRules, 'tables' | 'shardKey'>): boolean {
  const main = rules.tables[0]!;
  return expr.kind === 'column' && expr.name === rules.shardKey && (expr.table === undefined || expr.table === main.qualifier || expr.table === main.name);
}

/**
 * The selected value a sort key reads, under the name the row carries it: a select alias or
 * column under a name no other selected value shares, or a column of the only table's `*`.
 */
function outputFor(expr: Expr, selection: Selection, tables: MergeRules['tables']): { name: string; expr: Expr } | undefined {
  const unique = (name: string) => selection.items.filter((item) => item.output === name).length === 1;
  if (expr.kind === 'column' && expr.table === undefined) {
    const aliased = selection.items.find((item) => item.output === expr.name);
    if (aliased && unique(expr.name)) return { name: expr.name, expr: aliased.expr };
  }
  const selected = selection.items.find((item) => item.output !== undefined && sameExpression(item.expr, expr));
  if (selected && unique(selected.output!)) return { name: selected.output!, expr: selected.expr };
  const [main] = tables;
  const onlyTable = tables.length === 1 && main !== undefined;
  if (
    onlyTable &&
    expr.kind === 'column' &&
    (expr.table === undefined || expr.table === main.qualifier || expr.table === main.name) &&
    selection.stars.some((star) => star === '' || star === main.qualifier) &&
    !selection.items.some((item) => item.output === expr.name)
  ) {
    return { name: expr.name, expr };
  }
  return undefined;
}

function resultShape(method: BuilderMethod, statements: readonly Statement[]): MergeSpecBase['result'] {
  if (method === 'first') return { shape: 'first' };
  if (method !== 'pluck') return { shape: 'rows' };
  const pluck = statements.find((statement) => statement.grouping === 'columns' && statement.type === 'pluck');
  const [source, alias] = splitAlias(String(pluck?.value));
  return { shape: 'pluck', column: alias ?? lastSegment(source) };
}
