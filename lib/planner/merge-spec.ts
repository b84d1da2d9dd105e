/**
 * How a select that reaches several shards is answered as one database would answer it: what
 * each shard is asked (`shard`), and how their rows are merged (`kind` and the rest). Plain
 * data, part of the QueryPlan, so that tests compare plans without a database.
 *
 *   concat     rows concatenated; LIMIT/OFFSET cut afterwards (no ORDER BY: any rows will do)
 *   sort       each shard sorts and returns offset+limit rows; a k-way merge (heap) interleaves them.
 *              Also a grouped query whose groups each live on one shard (grouped by the shard key):
 *              each shard's groups are final, so it runs whole on every shard.
 *   distinct   each shard returns its distinct rows (top offset+limit when ordered); merged rows are
 *              deduplicated, sorted, cut
 *   aggregate  each shard returns partial aggregates per group (AVG as SUM and COUNT; the values of
 *              a DISTINCT aggregate's argument as one more group column); groups are combined,
 *              expressions evaluated, HAVING filters them, ORDER BY sorts them, LIMIT/OFFSET cut
 */
import type { Expr } from './expression.js';
import type { PrintedSql } from './print-expression.js';

export type SortDirection = 'asc' | 'desc';

export interface SortKey {
  /** The key of the value in a merged row (an output column, or a hidden helper column). */
  column: string;
  direction: SortDirection;
  nulls: 'first' | 'last';
  /** What the value is, to know how it compares: a column (`orders.amount`) or any expression. */
  expression: Expr;
  /**
   * Sort by this test of the value instead of the value: knex compiles orderBy(col, dir,
   * 'last' | 'first') for MySQL to `ORDER BY (col IS NULL) dir` / `(col IS NOT NULL) dir`.
   */
  test?: 'is null' | 'is not null';
}

export type AggregateFunction = 'count' | 'sum' | 'min' | 'max' | 'avg';

/** A column a shard adds to its select list: `sql as alias`. */
export interface ShardColumn {
  sql: PrintedSql;
  alias: string;
}

export interface ShardRewrite {
  /** Columns added to each shard's select list so that the merge can read them. */
  addColumns: ShardColumn[];
  /** Replace the select list: group columns and partial aggregates (aggregate merges). */
  replaceColumns?: ShardColumn[];
  /** Expressions added to each shard's GROUP BY (the arguments of DISTINCT aggregates). */
  addGroupBy?: PrintedSql[];
  dropOrder: boolean;
  dropHaving: boolean;
  /** Each shard's LIMIT; absent: none. */
  limit?: number;
}

export interface MergeSpecBase {
  /** The tables of the query (main table first), to look up how their columns compare. */
  tables: { name: string; qualifier: string }[];
  shard: ShardRewrite;
  orderBy: SortKey[];
  offset: number;
  limit?: number;
  /** Helper columns removed from merged rows before they are returned. */
  hidden: string[];
  /** How the caller receives the rows: all of them, the first one, or one column's values. */
  result: { shape: 'rows' } | { shape: 'first' } | { shape: 'pluck'; column: string };
  /**
   * Rows one shard may return to a merge that holds them all (distinct, aggregate): a shard
   * asked for one more fails the query with MergeLimitError instead of exhausting memory.
   */
  maxShardRows?: number;
}

export interface GroupColumn {
  /** The grouped expression. */
  expression: Expr;
  /** The hidden per-shard column carrying it. */
  partial: string;
}

export interface MergedAggregate {
  /** The key of its combined value in a merged group. */
  key: string;
  fn: AggregateFunction;
  distinct: boolean;
  argument: Expr | '*';
  /** Per-shard partial columns: one, SUM and COUNT for AVG, none for DISTINCT. */
  partials: string[];
  /** DISTINCT: the hidden group column carrying the argument's values. */
  values?: string;
}

export type MergeSpec =
  | (MergeSpecBase & { kind: 'concat' })
  | (MergeSpecBase & { kind: 'sort' })
  | (MergeSpecBase & {
      kind: 'distinct';
      columns: string[];
      /** What each column holds, to know which values are equal (1.0 and 1.00 are). */
      expressions: Expr[];
    })
  | (MergeSpecBase & {
      kind: 'aggregate';
      groups: GroupColumn[];
      aggregates: MergedAggregate[];
      /** The selected values in select order, as expressions over the merged group (`ref` nodes). */
      outputs: { name: string; expr: Expr }[];
      having?: Expr;
      /** Sort values that are not outputs, computed per group under their key. */
      sortValues: { key: string; expr: Expr }[];
    });
