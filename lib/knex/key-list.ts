/**
 * A select whose answer is one row set per key of an `IN` list on the shard key, put together:
 * `select [*|columns] from t where key in (k1, k2, ...) [and per-row filters]`, with no order,
 * limit, offset, grouping, aggregate or distinct (any of those makes rows depend on each other).
 * The read cache answers such a select key by key (kit/per-key-reads.ts): each key's rows are
 * an entry of its own, invalidated by writes of that key alone.
 */
import { type AnyQueryBuilder, copyBuilder, internalsOf, type Statement } from './builder-internals.js';

export interface KeyList {
  /** Index of the `whereIn` statement in the builder's statements. */
  index: number;
  statement: Statement;
  values: readonly unknown[];
}

const ALIASED = /\sas\s/i;

/** Longer lists are one entry: an entry (and, with Redis, three calls) per key would cost more than it saves. */
export const MAX_LIST_KEYS = 100;

/** Fields of `_single` a per-key select may hold; anything else set (limit, offset, ...) disqualifies it. */
const PLAIN_SELECT_FIELDS = new Set(['table', 'only']);

/**
 * The builder's key list, when its answer splits by key (see above) and the rows carry the key
 * column `shardKey`; `spellings` are how the query names that column (`id`, `u.id`).
 */
export function keyListOf(builder: AnyQueryBuilder, shardKey: string, spellings: readonly string[], qualifier: string): KeyList | undefined {
  const { _method: method, _single: single, _statements: statements } = internalsOf(builder);
  if ((method ?? 'select') !== 'select') return undefined;
  for (const [field, value] of Object.entries(single)) if (!PLAIN_SELECT_FIELDS.has(field) && value !== undefined) return undefined;
  let list: KeyList | undefined;
  let columns: unknown[] = [];
  for (const [index, statement] of statements.entries()) {
    if (statement.grouping === 'columns') {
      // Plain column names only: no aggregate, distinct or distinctOn, and no alias (one could rename another column to the key's name).
      if (!Object.keys(statement).every((field) => field === 'grouping' || field === 'value') || !Array.isArray(statement.value)) return undefined;
      if (!statement.value.every((column) => typeof column === 'string' && !ALIASED.test(column))) return undefined;
      columns = columns.concat(statement.value);
      continue;
    }
    // Every filter must hold row by row, joined with AND: an OR would admit rows of other keys.
    if (statement.grouping !== 'where' || statement.bool !== 'and') return undefined;
    if (statement.type === 'whereIn' && !statement.not && spellings.includes(statement.column as string) && Array.isArray(statement.value)) {
      if (list) return undefined;
      list = { index, statement, values: statement.value };
    }
  }
  if (!list || list.values.length < 2 || list.values.length > MAX_LIST_KEYS) return undefined;
  const everyColumn = columns.length === 0 || columns.includes('*') || columns.includes(`${qualifier}.*`);
  const carriesKey = everyColumn || columns.some((column) => column === shardKey || column === `${qualifier}.${shardKey}`);
  return carriesKey ? list : undefined;
}

/** The key list's statement asking for `values` instead. */
export function keyListStatement(list: KeyList, values: readonly unknown[]): Statement {
  return { ...list.statement, value: values };
}

/** A copy of the builder whose key list asks for `values`. */
export function withKeyList(builder: AnyQueryBuilder, list: KeyList, values: readonly unknown[]): AnyQueryBuilder {
  const copy = copyBuilder(builder);
  internalsOf(copy)._statements[list.index] = keyListStatement(list, values);
  return copy;
}
