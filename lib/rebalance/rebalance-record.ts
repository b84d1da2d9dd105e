/**
 * The control-table record of a rebalance: there is at most one, under this reserved name, and
 * its moving tables sync under it (see moving-table.ts). What it moves is the record's payload.
 */
import type { RingShard } from '../hashing/hash-ring.js';
import type { MigrationRecord, MigrationState } from '../migrations/online/control-store.js';

export const REBALANCE_NAME = 'shardkit:rebalance';

export interface RebalanceState {
  from: RingShard[];
  to: RingShard[];
  /** Primary-key columns by sharded table (they contain its shard key). */
  keys: Record<string, string[]>;
  /** Set once no row has a second copy: cleanup deleted the old owners' rows, or abort the new owners' copies. */
  cleaned?: boolean;
}

/** The rebalance a record describes, if it describes one. */
export function rebalanceOf(record: Pick<MigrationRecord, 'state'> | undefined): RebalanceState | undefined {
  return record?.state.payload as RebalanceState | undefined;
}

/** `state` describing `rebalance`. */
export function withRebalance(state: MigrationState, rebalance: RebalanceState): MigrationState {
  return { ...state, payload: rebalance };
}

/** What errors call it. */
export const REBALANCE_TITLE = 'the rebalance';
