/**
 * How a select that reaches several shards is answered as one database would answer it: what
 * each shard is asked (`shard`), and how their rows are merged (`kind` and the rest). Plain
 * data, part of the QueryPlan, so that tests compare plans without a database.
 *
 *   concat     rows concatenated; LIMIT/OFFSET cut afterwards (no ORDER BY: any rows will do)
 *   sort       each shard sorts and returns offset+limit rows; a k-way merge (heap) interleaves them
 *   distinct   each shard returns its distinct rows (top offset+limit when ordered); merged rows are
 *              deduplicated, sorted, cut
 *   aggregate  each shard returns partial aggregates per group (AVG as SUM and COUNT); groups are
 *              combined, HAVING filters them, ORDER BY sorts them, LIMIT/OFFSET cut
 */

export type SortDirection = 'asc' | 'desc';

export interface SortKey {
  /** The key of the value in a merged row (an output column, or a hidden helper column). */
  column: string;
  direction: SortDirection;
  nulls: 'first' | 'last';
  /** Where the value comes from (`orders.amount`, `count(*)`), to know how it compares. */
  source: string;
  /**
   * Sort by this test of the value instead of the value: knex compiles orderBy(col, dir,
   * 'last' | 'first') for MySQL to `ORDER BY (col IS NULL) dir` / `(col IS NOT NULL) dir`.
   */
  test?: 'is null' | 'is not null';
}

export type AggregateFunction = 'count' | 'sum' | 'min' | 'max' | 'avg';

export interface AggregateOutput {
  /** The key of the result in a merged row. */
  output: string;
  fn: AggregateFunction;
  /** The aggregated column as written (`amount`, `orders.amount`, `*`). */
  source: string;
  /** Hidden per-shard columns holding the partials: one, or SUM and COUNT for AVG. */
  partials: string[];
  /** Computed only for HAVING or ORDER BY, not returned. */
  hidden: boolean;
}

export interface GroupColumn {
  /** The grouped expression as written. */
  source: string;
  /** The hidden per-shard column carrying it. */
  partial: string;
  /** The key under which the query selects it, if it does. */
  output?: string;
}

export type HavingOperator = '=' | '<>' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'between' | 'null';

export interface HavingTerm {
  bool: 'and' | 'or';
  not: boolean;
  /** The merged-row key the condition tests. */
  column: string;
  operator: HavingOperator;
  value: unknown;
}

export interface ShardRewrite {
  /** Columns added to each shard's select list so that the merge can read them: `expression as alias`. */
  addColumns: { expression: string; alias: string }[];
  /** Replace the select list: group columns and partial aggregates (aggregate merges). */
  replaceColumns?: { expression: string; alias: string; fn?: 'count' | 'sum' | 'min' | 'max' }[];
  dropOrder: boolean;
  dropHaving: boolean;
  /** Each shard's LIMIT (offset + limit); absent: none. */
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
}

export type MergeSpec =
  | (MergeSpecBase & { kind: 'concat' })
  | (MergeSpecBase & { kind: 'sort' })
  | (MergeSpecBase & { kind: 'distinct'; columns: string[] })
  | (MergeSpecBase & {
      kind: 'aggregate';
      groups: GroupColumn[];
      aggregates: AggregateOutput[];
      having: HavingTerm[];
      /** Merged-row keys in the order the query selects them. */
      outputs: string[];
    });
