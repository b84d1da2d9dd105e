/**
 * kit.forKey() and kit.forShard(): a shard primary's guarded knex, for SQL shardkit does not
 * route. Its statements are not routed or dual-written, so while an online migration or a
 * rebalance runs, a statement that writes one of the tables it moves is refused
 * (MIGRATION_PHASE) instead of being silently missed; so is one that may write rows but cannot
 * be read (written-tables.ts). With nothing moving, nothing is parsed. A hatch is the shard's,
 * not a node's: each statement goes to the primary of the moment, so one kept across a failover
 * never writes to the fenced old primary.
 */
import type { Knex } from 'knex';
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import { withStatementCheck } from '../knex/guarded-client.js';
import type { MigrationCoordinator } from '../migrations/online/migration-coordinator.js';
import { writtenTables } from '../planner/written-tables.js';

/** A knex that is always `view` of the shard's current primary (Topology.livePrimary). */
export type LivePrimary = (shard: string, view: (primary: Knex) => Knex) => Knex;

export class EscapeHatches {
  private readonly hatches = new WeakMap<Knex, Knex>();
  private readonly liveHatches = new Map<string, Knex>();

  constructor(
    private readonly coordinator: Pick<MigrationCoordinator, 'idle' | 'refuseUncarried'>,
    private readonly family: SqlFamily,
    private readonly livePrimary: LivePrimary,
  ) {}

  /**
   * The shard's escape hatch: its current primary's, whichever that is when a statement runs,
   * so that one an application keeps across a failover writes to the promoted node.
   */
  forShard(shard: string): Knex {
    let hatch = this.liveHatches.get(shard);
    if (!hatch) {
      hatch = this.livePrimary(shard, (primary) => this.of(primary));
      this.liveHatches.set(shard, hatch);
    }
    return hatch;
  }

  /** `primary`'s escape hatch (one per primary, sharing its pool). */
  private of(primary: Knex): Knex {
    let hatch = this.hatches.get(primary);
    if (!hatch) {
      hatch = withStatementCheck(primary, (sql) => this.check(sql));
      this.hatches.set(primary, hatch);
    }
    return hatch;
  }

  private check(sql: string): void {
    if (this.coordinator.idle) return;
    const tables = writtenTables(this.family, sql);
    if (tables === undefined) {
      throw new UnsupportedQueryError('kit.forKey()/kit.forShard()', 'while a migration or rebalance runs, a statement that may write rows must be readable to tell which tables it writes; write through kit.table() or kit.transaction()');
    }
    for (const table of tables) this.coordinator.refuseUncarried(table);
  }
}
