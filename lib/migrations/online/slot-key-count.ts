/**
 * How many shard-key values a shard's slot runs hold: what sizes a walk by slots (a group of
 * runs holds about a batch of keys) and its progress total, nothing more. The exact count reads
 * the slot index over every run in one statement; a server slow to answer it (seen on the test
 * cluster: 30 s, during a checkpoint) must not fail the step it only sizes, so past
 * SIZING_COUNT_MS the estimate of the table's rows times the runs' share of the slots sizes the
 * walk instead. The walk itself lists every key either way.
 */
import type { Knex } from 'knex';
import { currentScope, withScope } from '../../access/call-scope.js';
import type { SqlFamily } from '../../config/config-types.js';
import { countKeysInSlots, estimateKeysInSlots } from '../../dialect/slot-column.js';
import { QueryTimeoutError } from '../../errors.js';
import type { SlotRun } from '../../hashing/slot-runs.js';

/** How long the exact count may take before the estimate stands in. */
export const SIZING_COUNT_MS = 5000;

export interface SlotKeyCount {
  keys: number;
  /** False: `keys` is an estimate (the count took too long); it may be off either way, zero included. */
  exact: boolean;
}

export async function countKeysToWalk(
  db: Knex,
  family: SqlFamily,
  where: { table: string; shardKey: string; column: string; runs: readonly SlotRun[] },
  boundMs = SIZING_COUNT_MS,
): Promise<SlotKeyCount> {
  const { table, shardKey, column, runs } = where;
  const outer = currentScope();
  const bound = performance.now() + boundMs;
  // The outer deadline stays the outer one's: only a count that would outlive the bound gives way.
  const deadline = Math.min(outer?.deadline ?? Number.POSITIVE_INFINITY, bound);
  try {
    const keys = await withScope({ priority: 'background', ...outer, deadline }, () => countKeysInSlots(db, family, table, shardKey, column, runs));
    return { keys, exact: true };
  } catch (error) {
    const outerExpired = outer?.deadline !== undefined && outer.deadline <= bound;
    if (!(error instanceof QueryTimeoutError) || outerExpired) throw error;
    return { keys: await estimateKeysInSlots(db, family, table, runs), exact: false };
  }
}
