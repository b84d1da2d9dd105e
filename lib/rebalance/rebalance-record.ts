/**
 * The control-table record of a rebalance: there is at most one, under this reserved name, and
 * its moving tables sync under it (see moving-table.ts).
 */
export const REBALANCE_NAME = 'shardkit:rebalance';
