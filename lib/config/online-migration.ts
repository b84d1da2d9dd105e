/**
 * An online data migration as declared in code: rows of `source` become rows of `target`
 * through `transform`, matched by `key` (columns present in both, unique in both, including
 * both tables' shard keys so that a key names one row on one shard on either side). `reverse`
 * maps a target row back, for the reverse dual write between cutover and cleanup that makes a
 * rollback from cutover lose nothing.
 *
 *   defineOnlineMigration({
 *     name: 'users_v2',
 *     source: 'users',
 *     target: 'users_v2',
 *     key: ['id'],
 *     transform: (user) => ({ id: user.id, first_name: ..., last_name: ..., email: user.email }),
 *     reverse: (user) => ({ id: user.id, name: `${user.first_name} ${user.last_name}`, email: user.email }),
 *   })
 */
export type Row = Record<string, unknown>;

export interface OnlineMigration {
  /** Unique; names the migration in the control table and the CLI. */
  name: string;
  source: string;
  target: string;
  /** Columns that identify a row in both tables. */
  key: string[];
  transform: (source: Row) => Row;
  /** Target row -> source row; required, since cutover writes back to the source. */
  reverse: (target: Row) => Row;
  /**
   * Shadow reads: whether the target rows (`actual`) match the source rows read by the
   * application, transformed (`expected`). Default: equal after normalising types.
   */
  compare?: (expected: Row, actual: Row) => boolean;
  /** Share of source reads compared during shadow_read, 0..1. Default 0.1. */
  shadowSampleRate?: number;
  /** Shadow mismatches tolerated before cutover. Default 0. */
  allowedShadowMismatches?: number;
}

export function defineOnlineMigration(migration: OnlineMigration): OnlineMigration {
  return migration;
}
