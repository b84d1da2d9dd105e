/**
 * One result from the parts of a query that ran on several shards (or in several statements),
 * shaped as knex returns it from one database: rows concatenate; for writes, the one shape
 * shardkit documents whatever the number of shards and the dialect:
 *
 *   insert without returning   { rowCount }: the rows inserted
 *   update, del                the number of rows changed
 *   with returning             the rows returned
 *
 * (Multi-shard selects merge in merge/merge-rows.ts.)
 */
import type { BuilderMethod } from '../knex/builder-internals.js';

export function combineResults(parts: readonly unknown[]): unknown {
  if (parts.length === 1) return parts[0];
  if (parts.every(Array.isArray)) return (parts as unknown[][]).flat();
  return parts;
}

export function combineWriteResults(method: BuilderMethod, returning: boolean, parts: readonly unknown[]): unknown {
  if (returning) return (parts as unknown[]).flatMap((part) => (Array.isArray(part) ? part : []));
  if (method === 'insert') return { rowCount: parts.reduce<number>((total, part) => total + Number((part as { rowCount?: unknown })?.rowCount ?? 0), 0) };
  if (method === 'update' || method === 'del') return parts.reduce<number>((total, part) => total + Number(part ?? 0), 0);
  return parts.length === 1 ? parts[0] : parts;
}

/** What a query returns when its shard-key condition admits no key, so nothing runs. */
export function emptyResult(method: BuilderMethod, returning: boolean): unknown {
  if (returning) return [];
  switch (method) {
    case 'first':
      return undefined;
    case 'insert':
      return { rowCount: 0 };
    case 'update':
    case 'del':
      return 0;
    default:
      return [];
  }
}
