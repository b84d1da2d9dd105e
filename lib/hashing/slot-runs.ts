/**
 * Runs of hash slots: the slots a rebalance moves, as ranges a slot column's index can scan. Pure.
 *
 * Adding one shard to N moves about 1/(N+1) of the 2^20 slots in roughly 16,384 x weight runs
 * (one per ring point of the new shard), so the moving rows of a table are a few thousand
 * index ranges, not a filter over every row.
 */
import { SLOT_COUNT } from './key-hasher.js';

/** Slots `first` to `last`, both included. */
export interface SlotRun {
  first: number;
  last: number;
}

/** The runs of consecutive slots, in order, for which `selected(slot)` holds. */
export function slotRuns(selected: (slot: number) => boolean): SlotRun[] {
  const runs: SlotRun[] = [];
  let first = -1;
  for (let slot = 0; slot <= SLOT_COUNT; slot++) {
    const inRun = slot < SLOT_COUNT && selected(slot);
    if (inRun && first < 0) first = slot;
    if (!inRun && first >= 0) {
      runs.push({ first, last: slot - 1 });
      first = -1;
    }
  }
  return runs;
}

export function slotsIn(runs: readonly SlotRun[]): number {
  return runs.reduce((sum, run) => sum + run.last - run.first + 1, 0);
}

/** The runs from slot `from` on: a run that spans it is cut there. */
export function runsFrom(runs: readonly SlotRun[], from: number): SlotRun[] {
  return runs.filter((run) => run.last >= from).map((run) => (run.first >= from ? run : { first: from, last: run.last }));
}

/**
 * Consecutive groups of runs, each covering at most `maxSlots` slots in at most `maxRuns` runs
 * (a run wider than `maxSlots` is split), so that one statement per group reads a bounded share
 * of a table: keys hash uniformly, so a group of s slots holds about keys x s / 2^20 of them.
 */
export function groupRuns(runs: readonly SlotRun[], maxSlots: number, maxRuns: number): SlotRun[][] {
  const width = Math.max(1, Math.floor(maxSlots));
  const groups: SlotRun[][] = [];
  let group: SlotRun[] = [];
  let slots = 0;
  for (const run of runs) {
    for (let first = run.first; first <= run.last; ) {
      const last = Math.min(run.last, first + (width - slots) - 1);
      group.push({ first, last });
      slots += last - first + 1;
      first = last + 1;
      if (slots >= width || group.length >= maxRuns) {
        groups.push(group);
        group = [];
        slots = 0;
      }
    }
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
