/**
 * Plans the merge of a grouped or aggregating select across shards (kind 'aggregate' in
 * merge-spec.ts): each shard returns its groups with partial aggregates, the merge combines
 * them and evaluates everything the query computes from them.
 *
 *   select category, sum(price) / count(*) as mean ... group by category having count(*) > 2
 *     shard:  select category as __sk_g0, sum(price) as __sk_p0, count(*) as __sk_p1 ... group by category
 *     merge:  groups by __sk_g0; mean = __sk_a0 / __sk_a1; keeps groups where __sk_a1 > 2
 *
 *   count(distinct user_id): each shard also groups by user_id (its distinct values per group);
 *     the merge counts the distinct values of every group
 *
 * Every selected, HAVING and ORDER BY expression is rewritten over the merged values (`ref`
 * nodes): a grouped expression, an aggregate, or (ORDER BY on both dialects, HAVING on MySQL)
 * a select alias. Anything else is not a function of the group and is refused.
 */
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import { containsAggregate, type Expr, expressionKey, rewrite } from './expression.js';
import type { GroupColumn, MergedAggregate, MergeSpec, MergeSpecBase, ShardColumn, SortKey } from './merge-spec.js';
import { type OrderItem, refuseUnevaluated } from './parse-expression.js';
import { printExpression } from './print-expression.js';
import type { Selection } from './read-clauses.js';

type Clause = 'select' | 'having' | 'order';

export interface AggregateQuery {
  selection: Selection;
  groups: Expr[];
  having: Expr | undefined;
  order: (OrderItem & { knexNulls: boolean })[];
}

export interface AggregateRules {
  family: SqlFamily;
  /** True for the main table's shard-key column: its distinct values are disjoint across shards. */
  isShardKey(expr: Expr): boolean;
}

export function planAggregate(query: AggregateQuery, rules: AggregateRules, base: Omit<MergeSpecBase, 'shard' | 'orderBy' | 'hidden'>): MergeSpec {
  const { family } = rules;
  if (query.selection.stars.length > 0) throw new UnsupportedQueryError('groupBy', 'select the grouped columns by name: * cannot be merged by group');
  const merged = new MergedValues(query.groups.map((expression, index) => ({ expression, partial: `__sk_g${index}` })), rules);
  const outputs = query.selection.items.map((item) => {
    if (item.output === undefined) throw new UnsupportedQueryError('raw column', 'give a raw select expression an alias (expr as name) so that the merged rows can carry it');
    return { name: item.output, expr: merged.resolve(item.expr, 'select', []) };
  });
  const having = query.having && merged.resolve(query.having, 'having', outputs);
  // What the merge computes (not what a shard computes: grouped expressions, aggregate arguments).
  for (const expr of [...outputs.map((output) => output.expr), ...(having ? [having] : [])]) refuseUnevaluated(merged.computed(expr));
  const sortValues: { key: string; expr: Expr }[] = [];
  const orderBy = query.order.map((item): SortKey => {
    const expr = merged.resolve(item.expr, 'order', outputs);
    refuseUnevaluated(merged.computed(expr));
    let column: string;
    if (expr.kind === 'ref') column = expr.key;
    else {
      column = `__sk_s${sortValues.length}`;
      sortValues.push({ key: column, expr });
    }
    return sortKeyOf(column, expr, item, family);
  });
  merged.finish();
  const holdsGroups = merged.groups.length > 0 || merged.distinctValues.length > 0;
  return {
    kind: 'aggregate',
    shard: {
      addColumns: [],
      replaceColumns: merged.shardColumns(),
      addGroupBy: merged.distinctValues.map((column) => column.sql),
      dropOrder: true,
      dropHaving: true,
      ...(holdsGroups && base.maxShardRows !== undefined ? { limit: base.maxShardRows + 1 } : {}),
    },
    groups: merged.groups,
    aggregates: merged.aggregates,
    outputs,
    ...(having ? { having } : {}),
    sortValues,
    orderBy,
    // Merged groups are projected onto `outputs`, which drops every helper value.
    hidden: [],
    ...base,
  };
}

export function sortKeyOf(column: string, expression: Expr, item: OrderItem & { knexNulls: boolean }, family: SqlFamily): SortKey {
  const direction = item.direction ?? 'asc';
  if (item.nulls && item.knexNulls && family === 'mysql') {
    // knex has no NULLS FIRST/LAST for MySQL: it orders by a null test instead of the value.
    return { column, direction, nulls: 'last', expression, test: item.nulls === 'last' ? 'is null' : 'is not null' };
  }
  return { column, direction, nulls: item.nulls ?? defaultNulls(family, direction), expression };
}

/** PostgreSQL sorts NULL as larger than any value, MySQL and MariaDB as smaller. */
function defaultNulls(family: SqlFamily, direction: 'asc' | 'desc'): 'first' | 'last' {
  const nullsLargest = family === 'postgres';
  return (direction === 'asc') === nullsLargest ? 'last' : 'first';
}

/** The values a merged group carries: its grouped expressions and the aggregates the query uses. */
class MergedValues {
  readonly aggregates: MergedAggregate[] = [];
  readonly distinctValues: (ShardColumn & { argument: Expr })[] = [];

  private readonly family: SqlFamily;

  constructor(
    readonly groups: GroupColumn[],
    private readonly rules: AggregateRules,
  ) {
    this.family = rules.family;
    for (const group of groups) {
      if (containsAggregate(group.expression)) throw new UnsupportedQueryError('groupBy', 'GROUP BY an aggregate is not valid SQL');
    }
  }

  /** The part of a resolved expression the merge evaluates: without the values shards computed. */
  computed(expr: Expr): Expr {
    return rewrite(expr, (node) => (node.kind === 'ref' ? { kind: 'literal', value: null, type: 'null' } : undefined));
  }

  /** `expr` over the merged values; refused where it uses anything that is not one. */
  resolve(expr: Expr, clause: Clause, outputs: readonly { name: string; expr: Expr }[]): Expr {
    if (clause === 'order' && expr.kind === 'column' && expr.table === undefined) {
      // ORDER BY a bare name means the select alias first, in both dialects; inside an
      // expression a name is a column (PostgreSQL reads aliases only as the whole item).
      const output = outputs.find((candidate) => candidate.name === expr.name);
      if (output) return output.expr;
    }
    return rewrite(expr, (node) => {
      const group = this.groups.find((candidate) => sameExpression(candidate.expression, node));
      if (group) return { kind: 'ref', key: group.partial, source: { kind: 'group', expression: group.expression } };
      if (node.kind === 'aggregate') return this.aggregateRef(node);
      if (node.kind === 'column') return this.alias(node, clause, outputs);
      return undefined;
    });
  }

  private alias(node: Extract<Expr, { kind: 'column' }>, clause: Clause, outputs: readonly { name: string; expr: Expr }[]): Expr {
    const output = node.table === undefined ? outputs.find((candidate) => candidate.name === node.name) : undefined;
    if (output && clause === 'having') {
      if (this.family === 'postgres') {
        throw new UnsupportedQueryError(
          'having',
          `PostgreSQL does not accept the select alias "${node.name}" in HAVING (one database rejects it too); repeat the aggregate, e.g. havingRaw('count(*) > ?', [n])`,
        );
      }
      return output.expr;
    }
    const name = node.table === undefined ? node.name : `${node.table}.${node.name}`;
    throw new UnsupportedQueryError('groupBy', `"${name}" is used but neither grouped nor aggregated`);
  }

  private aggregateRef(node: Extract<Expr, { kind: 'aggregate' }>): Expr {
    if (node.argument !== '*' && containsAggregate(node.argument)) throw new UnsupportedQueryError(node.fn, 'an aggregate of an aggregate is not valid SQL');
    // MIN and MAX of the distinct values are MIN and MAX of all values.
    if (node.distinct && (node.fn === 'min' || node.fn === 'max')) return this.aggregateRef({ ...node, distinct: false });
    const identity = expressionKey({ ...node });
    let aggregate = this.aggregates.find((candidate) => expressionKey({ kind: 'aggregate', fn: candidate.fn, distinct: candidate.distinct, argument: candidate.argument }) === identity);
    if (!aggregate) {
      const index = this.aggregates.length;
      const key = `__sk_a${index}`;
      // A shard-key value lives on one shard, so each shard's distinct values are its own: their
      // counts and sums add up like plain partials, and no value has to travel to the merge.
      const disjoint = node.distinct && node.argument !== '*' && this.rules.isShardKey(node.argument);
      const partials = node.distinct && !disjoint ? [] : node.fn === 'avg' ? [`__sk_p${index}_sum`, `__sk_p${index}_count`] : [`__sk_p${index}`];
      aggregate = { key, fn: node.fn, distinct: node.distinct, argument: node.argument, partials };
      if (node.distinct && node.argument !== '*' && !disjoint) aggregate.values = this.distinctColumn(node.argument);
      this.aggregates.push(aggregate);
    }
    return { kind: 'ref', key: aggregate.key, source: { kind: 'aggregate', fn: aggregate.fn, distinct: aggregate.distinct, argument: aggregate.argument } };
  }

  private distinctColumn(argument: Expr): string {
    const identity = expressionKey(argument);
    const existing = this.distinctValues.find((column) => expressionKey(column.argument) === identity);
    if (existing) return existing.alias;
    const alias = `__sk_d${this.distinctValues.length}`;
    this.distinctValues.push({ argument, alias, sql: printExpression(argument) });
    return alias;
  }

  /**
   * Once every aggregate is known: when some DISTINCT argument is pushed as a group column, each
   * shard's groups are finer than the query's, and per-shard DISTINCT counts of the shard key no
   * longer add up (a key repeats across those subgroups), so they travel as values too.
   */
  finish(): void {
    if (this.distinctValues.length === 0) return;
    for (const aggregate of this.aggregates) {
      if (!aggregate.distinct || aggregate.values || aggregate.argument === '*') continue;
      aggregate.partials = [];
      aggregate.values = this.distinctColumn(aggregate.argument);
    }
  }

  /** Each shard's select list: group values, distinct values, partial aggregates. */
  shardColumns(): ShardColumn[] {
    const partial = (fn: string, argument: Expr | '*', alias: string, distinct = false): ShardColumn => ({
      sql: printExpression({ kind: 'aggregate', fn: fn as MergedAggregate['fn'], distinct, argument }),
      alias,
    });
    return [
      ...this.groups.map((group) => ({ sql: printExpression(group.expression), alias: group.partial })),
      ...this.distinctValues.map(({ sql, alias }) => ({ sql, alias })),
      ...this.aggregates.flatMap((aggregate) => {
        if (aggregate.values) return [];
        const { distinct } = aggregate;
        if (aggregate.fn === 'avg') {
          return [partial('sum', aggregate.argument, aggregate.partials[0]!, distinct), partial('count', aggregate.argument, aggregate.partials[1]!, distinct)];
        }
        return [partial(aggregate.fn, aggregate.argument, aggregate.partials[0]!, distinct)];
      }),
    ];
  }
}

/** Equal expressions; `amount` and `orders.amount` are one column when only one is qualified. */
export function sameExpression(a: Expr, b: Expr): boolean {
  if (a.kind === 'column' && b.kind === 'column') {
    return a.name === b.name && (a.table === b.table || a.table === undefined || b.table === undefined);
  }
  return expressionKey(a) === expressionKey(b);
}
