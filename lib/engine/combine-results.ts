/**
 * One result from the results of a write that ran on several shards, shaped as knex would
 * return it from one database: affected-row counts add up, `returning` rows concatenate.
 * Drivers that answer an insert without `returning` with a result object (pg, PGlite) get one
 * object whose rowCount is the total. (Multi-shard selects merge in merge/merge-rows.ts.)
 */
import type { BuilderMethod } from '../planner/builder-internals.js';

export function combineResults(parts: readonly unknown[]): unknown {
  if (parts.length === 1) return parts[0];
  if (parts.every(Array.isArray)) return (parts as unknown[][]).flat();
  if (parts.every((part) => typeof part === 'number')) return (parts as number[]).reduce((sum, count) => sum + count, 0);
  if (parts.every(hasRowCount)) {
    return { command: parts[0]?.command, rowCount: parts.reduce((sum, part) => sum + part.rowCount, 0) };
  }
  return parts;
}

/** What a query returns when its shard-key condition admits no key, so nothing runs. */
export function emptyResult(method: BuilderMethod): unknown {
  switch (method) {
    case 'first':
      return undefined;
    case 'update':
    case 'del':
      return 0;
    default:
      return [];
  }
}

function hasRowCount(part: unknown): part is { command: unknown; rowCount: number } {
  return typeof part === 'object' && part !== null && typeof (part as { rowCount?: unknown }).rowCount === 'number';
}
