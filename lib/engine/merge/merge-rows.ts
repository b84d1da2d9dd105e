/**
 * The merge pipeline of a multi-shard select (see planner/merge-spec.ts): sources of rows, one
 * per shard, in; the rows one database would return, out. `streamMerged` yields rows as they
 * merge (bounded memory for concat and sort); `mergeAll` collects them and shapes the result
 * as knex would (rows, first(), pluck()).
 */
import type { SqlFamily } from '../../config/config-types.js';
import type { MergeSpec } from '../../planner/merge-spec.js';
import { aggregateClass, addPartials, extremePartial, finishAverage } from './combine-aggregates.js';
import { canonicalValue, type Row, rowComparator, type ValueClass } from './compare-values.js';
import { havingFilter } from './evaluate-having.js';
import { fromArray, mergeSorted } from './k-way-merge.js';

export interface MergeContext {
  family: SqlFamily;
  /** How values of a column (or aggregate) expression compare. */
  classOf: (source: string) => ValueClass;
}

export async function* streamMerged(spec: MergeSpec, sources: readonly AsyncIterable<Row>[], context: MergeContext): AsyncGenerator<Row> {
  const rows = ordered(spec, sources, context);
  const finish = spec.kind === 'aggregate' ? (row: Row) => project(row, spec.outputs) : (row: Row) => strip(row, spec.hidden);
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

/** The merged rows in their final order, before OFFSET/LIMIT. */
async function* ordered(spec: MergeSpec, sources: readonly AsyncIterable<Row>[], context: MergeContext): AsyncGenerator<Row> {
  switch (spec.kind) {
    case 'concat':
      for (const source of sources) yield* source;
      return;
    case 'sort':
      yield* mergeSorted(sources, rowComparator(spec.orderBy, (key) => context.classOf(key.source)));
      return;
    case 'distinct':
      yield* sortInMemory(await distinctRows(spec, sources), spec, context);
      return;
    case 'aggregate':
      yield* sortInMemory(await aggregateRows(spec, sources, context), spec, context);
      return;
  }
}

function sortInMemory(rows: Row[], spec: MergeSpec, context: MergeContext): Row[] {
  if (spec.orderBy.length === 0) return rows;
  return rows.sort(rowComparator(spec.orderBy, (key) => context.classOf(key.source)));
}

async function distinctRows(spec: Extract<MergeSpec, { kind: 'distinct' }>, sources: readonly AsyncIterable<Row>[]) {
  const seen = new Set<string>();
  const rows: Row[] = [];
  for (const source of sources) {
    for await (const row of source) {
      const columns = spec.columns.length > 0 ? spec.columns : Object.keys(row).filter((key) => !spec.hidden.includes(key));
      const key = columns.map((column) => canonicalValue(row[column], 'other')).join('\u0000');
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
}

async function aggregateRows(spec: Extract<MergeSpec, { kind: 'aggregate' }>, sources: readonly AsyncIterable<Row>[], context: MergeContext) {
  const groupClasses = spec.groups.map((group) => context.classOf(group.source));
  const groups = new Map<string, Group>();
  for (const source of sources) {
    for await (const row of source) {
      const key = spec.groups.map((group, index) => canonicalValue(row[group.partial], groupClasses[index]!)).join('\u0000');
      let group = groups.get(key);
      if (!group) {
        group = { row: Object.fromEntries(spec.groups.map((entry) => [entry.output ?? entry.partial, row[entry.partial]])), partials: new Map() };
        groups.set(key, group);
      }
      for (const aggregate of spec.aggregates) combinePartials(group.partials, aggregate, row, context);
    }
  }
  const classByColumn = new Map<string, ValueClass>([
    ...spec.groups.map((group, index) => [group.output ?? group.partial, groupClasses[index]!] as const),
    ...spec.aggregates.map((aggregate) => [aggregate.output, aggregateClass(aggregate, context.classOf)] as const),
  ]);
  const keep = havingFilter(spec.having, (column) => classByColumn.get(column) ?? 'other');
  const rows: Row[] = [];
  for (const group of groups.values()) {
    const row = { ...group.row };
    for (const aggregate of spec.aggregates) row[aggregate.output] = finishAggregate(group.partials, aggregate, context);
    if (keep(row)) rows.push(row);
  }
  return rows;
}

function combinePartials(partials: Map<string, unknown>, aggregate: Extract<MergeSpec, { kind: 'aggregate' }>['aggregates'][number], row: Row, context: MergeContext) {
  for (const partial of aggregate.partials) {
    const value = row[partial];
    const current = partials.has(partial) ? partials.get(partial) : undefined;
    if (aggregate.fn === 'min' || aggregate.fn === 'max') {
      partials.set(partial, extremePartial(current, value, aggregate.fn, context.classOf(aggregate.source)));
    } else {
      partials.set(partial, partials.has(partial) ? addPartials(current, value) : value);
    }
  }
}

function finishAggregate(partials: Map<string, unknown>, aggregate: Extract<MergeSpec, { kind: 'aggregate' }>['aggregates'][number], context: MergeContext): unknown {
  if (aggregate.fn !== 'avg') return partials.get(aggregate.partials[0]!) ?? null;
  return finishAverage(partials.get(aggregate.partials[0]!), partials.get(aggregate.partials[1]!), context.classOf(aggregate.source), context.family);
}

function project(row: Row, outputs: readonly string[]): Row {
  return Object.fromEntries(outputs.map((column) => [column, row[column]]));
}

function strip(row: Row, hidden: readonly string[]): Row {
  if (hidden.length === 0) return row;
  const copy = { ...row };
  for (const column of hidden) delete copy[column];
  return copy;
}
