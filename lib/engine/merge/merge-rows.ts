/**
 * The merge pipeline of a multi-shard select (see planner/merge-spec.ts): sources of rows, one
 * per shard, in; the rows one database would return, out. `streamMerged` yields rows as they
 * merge (bounded memory for concat and sort); `mergeAll` collects them and shapes the result
 * as knex would (rows, first(), pluck()).
 */
import type { SqlFamily } from '../../config/config-types.js';
import { MergeLimitError } from '../../errors.js';
import type { Expr } from '../../planner/expression.js';
import type { MergedAggregate, MergeSpec, SortKey } from '../../planner/merge-spec.js';
import type { ColumnTypeLookup } from '../column-types.js';
import { addPartials, extremePartial, finishAverage, finishDistinct } from './combine-aggregates.js';
import { canonicalValue, type Row, rowComparator, type ValueClass } from './compare-values.js';
import { compileExpression, type EvaluationContext, present } from './evaluate-expression.js';
import { classOfSqlType, typeOfExpression } from './expression-types.js';
import { fromArray, mergeSorted } from './k-way-merge.js';

export interface MergeContext {
  family: SqlFamily;
  /** The types of the query's columns. */
  columnType: ColumnTypeLookup;
  /** How the driver returns BIGINT values. */
  bigintsAs: 'string' | 'number';
}

type AggregateSpec = Extract<MergeSpec, { kind: 'aggregate' }>;

export async function* streamMerged(spec: MergeSpec, sources: readonly AsyncIterable<Row>[], context: MergeContext): AsyncGenerator<Row> {
  const evaluation = evaluationContext(context);
  const rows = ordered(spec, bounded(spec, sources), evaluation);
  const finish = spec.kind === 'aggregate' ? projection(spec, evaluation) : (row: Row) => strip(row, spec.hidden);
  const { offset, limit } = spec;
  let index = 0;
  for await (const row of rows) {
    if (limit !== undefined && index >= offset + limit) break;
    if (index++ >= offset) yield finish(row);
  }
}

export async function mergeAll(spec: MergeSpec, sources: readonly AsyncIterable<Row>[], context: MergeContext): Promise<unknown> {
  const rows: Row[] = [];
  for await (const row of streamMerged(spec, sources, context)) rows.push(row);
  const { result } = spec;
  if (result.shape === 'first') return rows[0];
  if (result.shape === 'pluck') return rows.map((row) => row[result.column]);
  return rows;
}

export function mergeArrays(spec: MergeSpec, parts: readonly Row[][], context: MergeContext): Promise<unknown> {
  return mergeAll(spec, parts.map(fromArray), context);
}

function evaluationContext(context: MergeContext): EvaluationContext {
  return { family: context.family, columnType: context.columnType, bigintsAs: context.bigintsAs };
}

/** How the values of a sort key compare, from the type of what it sorts by. */
function sortClass(key: SortKey, context: EvaluationContext): ValueClass {
  return classOfSqlType(typeOfExpression(key.expression, context));
}

/** The sources, failing a merge that holds every row when a shard returns more than the bound. */
function bounded(spec: MergeSpec, sources: readonly AsyncIterable<Row>[]): AsyncIterable<Row>[] {
  const bound = spec.maxShardRows;
  if (bound === undefined) return [...sources];
  return sources.map(async function* (source) {
    let count = 0;
    for await (const row of source) {
      if (++count > bound) throw new MergeLimitError(bound);
      yield row;
    }
  });
}

/** The merged rows in their final order, before OFFSET/LIMIT. */
async function* ordered(spec: MergeSpec, sources: readonly AsyncIterable<Row>[], context: EvaluationContext): AsyncGenerator<Row> {
  const comparator = () => rowComparator(spec.orderBy, (key) => sortClass(key, context));
  switch (spec.kind) {
    case 'concat':
      for (const source of sources) yield* source;
      return;
    case 'sort':
      yield* mergeSorted(sources, comparator());
      return;
    case 'distinct':
      yield* sortInMemory(await distinctRows(spec, sources, context), spec, comparator);
      return;
    case 'aggregate':
      yield* sortInMemory(await aggregateRows(spec, sources, context), spec, comparator);
      return;
  }
}

function sortInMemory(rows: Row[], spec: MergeSpec, comparator: () => (a: Row, b: Row) => number): Row[] {
  if (spec.orderBy.length === 0) return rows;
  return rows.sort(comparator());
}

async function distinctRows(spec: Extract<MergeSpec, { kind: 'distinct' }>, sources: readonly AsyncIterable<Row>[], context: EvaluationContext) {
  const seen = new Set<string>();
  const rows: Row[] = [];
  const classes = spec.expressions.map((expr) => classOfSqlType(typeOfExpression(expr, context)));
  for (const source of sources) {
    for await (const row of source) {
      const key = spec.columns.map((column, index) => canonicalValue(row[column], classes[index]!)).join('\u0000');
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push(row);
    }
  }
  return rows;
}

interface Group {
  row: Row;
  partials: Map<string, unknown>;
  /** DISTINCT aggregates: canonical value -> value, per aggregate key. */
  distinct: Map<string, Map<string, unknown>>;
}

async function aggregateRows(spec: AggregateSpec, sources: readonly AsyncIterable<Row>[], context: EvaluationContext) {
  const groupClasses = spec.groups.map((group) => classOfSqlType(typeOfExpression(group.expression, context)));
  const argumentType = (aggregate: MergedAggregate) => (aggregate.argument === '*' ? 'int' : typeOfExpression(aggregate.argument, context));
  const argumentClasses = new Map(spec.aggregates.map((aggregate) => [aggregate.key, classOfSqlType(argumentType(aggregate))]));
  const groups = new Map<string, Group>();
  for (const source of sources) {
    for await (const row of source) {
      const key = spec.groups.map((group, index) => canonicalValue(row[group.partial], groupClasses[index]!)).join('\u0000');
      let group = groups.get(key);
      if (!group) {
        group = { row: Object.fromEntries(spec.groups.map((entry) => [entry.partial, row[entry.partial]])), partials: new Map(), distinct: new Map() };
        groups.set(key, group);
      }
      for (const aggregate of spec.aggregates) {
        const valueClass = argumentClasses.get(aggregate.key)!;
        if (aggregate.values) collectDistinct(group, aggregate, row[aggregate.values], valueClass);
        else combinePartials(group.partials, aggregate, row, valueClass);
      }
    }
  }
  // Without GROUP BY the answer is one row even when no shard returned one (DISTINCT
  // aggregates group each shard's rows by their argument, so an empty shard returns none).
  if (spec.groups.length === 0 && groups.size === 0) groups.set('', { row: {}, partials: new Map(), distinct: new Map() });
  const having = spec.having && compileExpression(spec.having, context);
  const sortValues = spec.sortValues.map((entry) => ({ key: entry.key, compiled: compileExpression(entry.expr, context) }));
  const rows: Row[] = [];
  for (const group of groups.values()) {
    const row = { ...group.row };
    for (const aggregate of spec.aggregates) {
      row[aggregate.key] = aggregate.values
        ? finishDistinct(aggregate.fn as 'count' | 'sum' | 'avg', [...(group.distinct.get(aggregate.key)?.values() ?? [])], argumentType(aggregate), context)
        : finishAggregate(group.partials, aggregate, argumentClasses.get(aggregate.key)!, context);
    }
    if (having && having.test(row) !== true) continue;
    for (const { key, compiled } of sortValues) row[key] = compiled.evaluate(row);
    rows.push(row);
  }
  return rows;
}

function collectDistinct(group: Group, aggregate: MergedAggregate, value: unknown, valueClass: ValueClass): void {
  let values = group.distinct.get(aggregate.key);
  if (!values) {
    values = new Map();
    group.distinct.set(aggregate.key, values);
  }
  if (value !== null && value !== undefined) values.set(canonicalValue(value, valueClass), value);
}

function combinePartials(partials: Map<string, unknown>, aggregate: MergedAggregate, row: Row, valueClass: ValueClass) {
  for (const partial of aggregate.partials) {
    const value = row[partial];
    const current = partials.has(partial) ? partials.get(partial) : undefined;
    if (aggregate.fn === 'min' || aggregate.fn === 'max') {
      partials.set(partial, extremePartial(current, value, aggregate.fn, valueClass));
    } else {
      partials.set(partial, partials.has(partial) ? addPartials(current, value) : value);
    }
  }
}

function finishAggregate(partials: Map<string, unknown>, aggregate: MergedAggregate, valueClass: ValueClass, context: EvaluationContext): unknown {
  const first = partials.get(aggregate.partials[0]!);
  if (aggregate.fn === 'count') return first ?? present(0n, 'bigint', context);
  if (aggregate.fn !== 'avg') return first ?? null;
  return finishAverage(first, partials.get(aggregate.partials[1]!), valueClass, context.family);
}

/** A merged group as the query selects it: each output by its name, in select order. */
function projection(spec: AggregateSpec, context: EvaluationContext): (row: Row) => Row {
  const outputs = spec.outputs.map(({ name, expr }) => ({ name, value: outputValue(expr, context) }));
  return (row) => Object.fromEntries(outputs.map(({ name, value }) => [name, value(row)]));
}

/** A merged value as it is (a group column, an aggregate), or an expression evaluated over them. */
function outputValue(expr: Expr, context: EvaluationContext): (row: Row) => unknown {
  if (expr.kind === 'ref') return (row) => row[expr.key];
  const compiled = compileExpression(expr, context);
  return (row) => compiled.evaluate(row);
}

function strip(row: Row, hidden: readonly string[]): Row {
  if (hidden.length === 0) return row;
  const copy = { ...row };
  for (const column of hidden) delete copy[column];
  return copy;
}
