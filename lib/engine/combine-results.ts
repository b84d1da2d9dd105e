/**
 * One result from several shards' results, shaped as knex would return it from one database:
 * row arrays concatenate (then the plan's LIMIT/OFFSET window is cut), affected-row counts add
 * up, `first()` takes the first row found. Drivers that answer an insert without `returning`
 * with a result object (pg, PGlite) get one object whose rowCount is the total.
 */
import type { BuilderMethod } from '../planner/builder-internals.js';
import type { QueryPlan } from '../planner/query-plan.js';

export function combineResults(plan: QueryPlan, parts: readonly unknown[]): unknown {
  if (plan.method === 'first') return parts.find((part) => part !== undefined);
  if (parts.length === 1) return parts[0];
  if (parts.every(Array.isArray)) return applyWindow(plan, (parts as unknown[][]).flat());
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

function applyWindow(plan: QueryPlan, rows: unknown[]): unknown[] {
  if (!plan.window) return rows;
  const { offset, limit } = plan.window;
  return rows.slice(offset, limit === undefined ? undefined : offset + limit);
}

function hasRowCount(part: unknown): part is { command: unknown; rowCount: number } {
  return typeof part === 'object' && part !== null && typeof (part as { rowCount?: unknown }).rowCount === 'number';
}
