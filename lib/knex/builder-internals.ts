/**
 * A typed view of the parts of a knex QueryBuilder that routing reads: `_method`, `_single`
 * and `_statements`. These fields are how every knex dialect compiles a query and have kept
 * their shape across knex 0.x to 3.x; this file is the only place that knows their names.
 */
import type { Knex } from 'knex';

export type BuilderMethod = 'select' | 'first' | 'pluck' | 'insert' | 'update' | 'del' | 'truncate' | 'columnInfo';

/** Methods that return rows (select, first, pluck), and every method that only reads (also columnInfo). */
export const ROW_METHODS: ReadonlySet<string> = new Set<BuilderMethod>(['select', 'first', 'pluck']);
export const READ_METHODS: ReadonlySet<string> = new Set<BuilderMethod>(['select', 'first', 'pluck', 'columnInfo']);

export interface Statement {
  grouping: string;
  type?: string;
  column?: unknown;
  operator?: unknown;
  value?: unknown;
  not?: boolean;
  bool?: string;
  method?: string;
  distinct?: boolean;
  /** aggregate statements: countDistinct() and friends, and the `as` option. */
  aggregateDistinct?: boolean;
  alias?: string;
  /** whereColumn(): the value is a column name, not a literal. */
  asColumn?: boolean;
  /** order statements */
  direction?: string;
  nulls?: string;
  /** join statements */
  table?: unknown;
  joinType?: string;
  clauses?: Statement[];
}

export interface BuilderSingle {
  table?: unknown;
  /** PostgreSQL's ONLY (no inherited tables). */
  only?: boolean;
  insert?: unknown;
  update?: Record<string, unknown>;
  counter?: Record<string, unknown>;
  limit?: number;
  offset?: number;
  returning?: unknown;
  onConflict?: unknown;
  /** An upsert: onConflict(...).merge(updates). */
  merge?: { updates: unknown };
}

interface BuilderInternals {
  _method: BuilderMethod;
  _single: BuilderSingle;
  _statements: Statement[];
  _timeout?: number;
  _cancelOnTimeout?: boolean;
  client: Knex.Client;
  clone(): AnyQueryBuilder;
}

export type AnyQueryBuilder = Knex.QueryBuilder;

export function internalsOf(builder: AnyQueryBuilder): BuilderInternals {
  return builder as unknown as BuilderInternals;
}

/** A knex builder, raw or function used as a value: nothing routing can evaluate. */
export function isSqlExpression(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { isRawInstance?: boolean; toSQL?: unknown };
  return candidate.isRawInstance === true || typeof candidate.toSQL === 'function';
}

/** A knex QueryBuilder (a subquery), as opposed to a raw fragment. */
export function isSubquery(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { isRawInstance?: boolean; toSQL?: unknown };
  return candidate.isRawInstance !== true && typeof candidate.toSQL === 'function';
}

/**
 * A private copy of `builder` that can be reshaped for one shard. knex's clone() copies the
 * statements array but shares the statement objects, so callers replace statements rather
 * than edit them; it also forgets `.timeout()`, which is carried over here.
 */
export function copyBuilder(builder: AnyQueryBuilder): AnyQueryBuilder {
  const source = internalsOf(builder);
  const copy = source.clone();
  if (source._timeout !== undefined) {
    const target = internalsOf(copy);
    target._timeout = source._timeout;
    target._cancelOnTimeout = source._cancelOnTimeout;
  }
  return copy;
}

/** Points a private copy (see copyBuilder) at the knex client of the node that will run it. */
export function bindToClient(copy: AnyQueryBuilder, client: Knex.Client): AnyQueryBuilder {
  internalsOf(copy).client = client;
  return copy;
}

/** The SQL and bindings of a knex.raw() value; undefined for anything else. */
export function rawOf(value: unknown): { sql: string; bindings?: unknown } | undefined {
  if (typeof value !== 'object' || value === null || (value as { isRawInstance?: boolean }).isRawInstance !== true) return undefined;
  const raw = value as { sql: string; bindings?: unknown };
  return { sql: raw.sql, bindings: raw.bindings };
}
