/**
 * Plans a join whose matching rows may live on different shards (not on both shard keys, or
 * with a global table on one shard) as a lookup join, in the spirit of Vitess's nested-loop
 * join: the kit reads the FROM table's rows (the outer side, with its own WHERE), then the
 * joined table's rows whose join column is among the values found (batched `whereIn`, routed
 * by the shard key where the join column is one), and joins them in memory (kit/lookup-join.ts).
 *
 *   orders o join products p on p.id = o.product_id where o.status = 'paid' order by o.id limit 10
 *     outer: select o.* from orders o where o.status = 'paid'           (every shard)
 *     inner: select p.* from products p where p.id in (...)             (the owners of those ids)
 *     merge: hash join on product_id = id, order by o.id, limit 10
 *
 * Plain selects only: qualified columns and stars, WHERE conditions on one table each, ORDER BY
 * qualified columns, LIMIT/OFFSET; INNER and LEFT joins on one equality. Aggregates, GROUP BY,
 * DISTINCT and conditions spanning both tables are refused. Both sides are bounded by
 * `maxRows` (rows fetched), beyond which the query fails with MergeLimitError.
 */
import { UnsupportedQueryError } from '../errors.js';
import { type AnyQueryBuilder, internalsOf, rawOf, ROW_METHODS, type Statement } from '../knex/builder-internals.js';
import type { SqlFamily } from '../config/config-types.js';
import { columnExpr } from './parse-expression.js';
import type { JoinShape, QueryShape, TableRef } from './query-shape.js';
import { readOrder, readSelection } from './read-clauses.js';

export interface LookupSide {
  table: string;
  qualifier: string;
  /** The join column of this side. */
  column: string;
}

export interface LookupJoinSpec {
  strategy: 'lookup';
  type: 'inner' | 'left';
  outer: LookupSide;
  inner: LookupSide;
  /** Indexes of the WHERE statements that constrain the inner table (moved to its lookup). */
  innerWhere: number[];
  /** Values per inner `whereIn`. */
  batchSize: number;
  /** Rows each side may fetch. */
  maxRows: number;
}

const BATCH_SIZE = 500;
const JOIN_TYPES: Record<string, 'inner' | 'left'> = { inner: 'inner', left: 'left', 'left outer': 'left' };

export function planLookupJoin(builder: AnyQueryBuilder, shape: QueryShape, join: JoinShape, family: SqlFamily, maxRows: number): LookupJoinSpec {
  const refuse = (detail: string) => new UnsupportedQueryError('join', `a join of "${shape.table.name}" and "${join.table.name}" across shards ${detail}`);
  if (shape.joins.length !== 1) throw refuse('is answered for one joined table only');
  const type = JOIN_TYPES[join.type];
  if (!type) throw refuse(`runs as INNER or LEFT join only, not ${join.type.toUpperCase()}`);
  if (!ROW_METHODS.has(shape.method)) throw refuse(`reads rows; ${shape.method} through it is not supported`);
  if (join.equalities.length !== 1) throw refuse('needs an ON clause of one equality between a column of each table');
  const [left, right] = join.equalities[0]!.map(columnExpr) as [ReturnType<typeof columnExpr>, ReturnType<typeof columnExpr>];
  const sideOf = (table: TableRef) => (expr: ReturnType<typeof columnExpr>) => expr.kind === 'column' && expr.table === table.qualifier;
  const isOuter = sideOf(shape.table);
  const isInner = sideOf(join.table);
  const [outerColumn, innerColumn] = isOuter(left) && isInner(right) ? [left, right] : isOuter(right) && isInner(left) ? [right, left] : [undefined, undefined];
  if (outerColumn?.kind !== 'column' || innerColumn?.kind !== 'column') throw refuse(`needs ON ${shape.table.qualifier}.column = ${join.table.qualifier}.column`);
  const { _statements: statements, client } = internalsOf(builder);
  const innerWhere: number[] = [];
  statements.forEach((statement, index) => {
    const qualifier = qualifierOf(statement);
    switch (statement.grouping) {
      case 'join':
      case 'columns':
      case 'order':
        return;
      case 'where':
        if (qualifier === undefined || statement.bool === 'or') throw refuse('needs each WHERE condition AND-ed and on one qualified column (o.status, not status or raw SQL)');
        if (qualifier === join.table.qualifier) {
          if (type === 'left') throw refuse('with LEFT JOIN cannot filter the joined table in WHERE (it would drop unmatched rows); filter the FROM table');
          innerWhere.push(index);
        } else if (qualifier !== shape.table.qualifier) throw refuse(`has a WHERE condition on an unknown table "${qualifier}"`);
        return;
      default:
        throw refuse(`cannot merge ${statement.grouping.toUpperCase()} over the joined rows`);
    }
  });
  const selection = readSelection(statements, client, family);
  if (selection.distinct) throw refuse('cannot merge DISTINCT over the joined rows');
  const qualifiers = [shape.table.qualifier, join.table.qualifier];
  for (const item of selection.items) {
    if (item.expr.kind !== 'column' || item.expr.table === undefined || !qualifiers.includes(item.expr.table)) {
      throw refuse('selects qualified columns and stars only (o.id, p.*), no aggregates or expressions');
    }
  }
  for (const star of selection.stars) if (star !== '' && !qualifiers.includes(star)) throw refuse(`selects ${star}.*, which is neither table`);
  for (const item of readOrder(statements, family)) {
    if (item.expr.kind !== 'column' || item.expr.table === undefined || !qualifiers.includes(item.expr.table) || item.knexNulls) {
      throw refuse('orders by qualified columns only');
    }
  }
  return {
    strategy: 'lookup',
    type,
    outer: { table: shape.table.name, qualifier: shape.table.qualifier, column: outerColumn.name },
    inner: { table: join.table.name, qualifier: join.table.qualifier, column: innerColumn.name },
    innerWhere,
    batchSize: BATCH_SIZE,
    maxRows,
  };
}

/** The table qualifier of a one-column WHERE condition, undefined for raw SQL, groups and unqualified columns. */
function qualifierOf(statement: Statement): string | undefined {
  if (statement.grouping !== 'where' || typeof statement.column !== 'string' || rawOf(statement.value) || statement.asColumn) return undefined;
  const dot = statement.column.lastIndexOf('.');
  return dot < 0 ? undefined : statement.column.slice(0, dot);
}
