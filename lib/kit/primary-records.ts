/**
 * The primary switches every instance follows, on the control database: one row per shard that
 * failed over, naming the node that is its primary now. An instance that starts, or one that
 * never saw the old primary fail, reads it and fences the old primary too, so that a demoted
 * primary that comes back is never written to (it is stale until the configuration names it
 * again, or a planned switch makes it primary again).
 *
 *   shardkit_primaries   shard (key), node (its name), address (where it is, without
 *                        credentials), epoch (switches recorded so far), switched_at (ms)
 *
 * Instances match the record by address, not by name: names default to a node's place in the
 * config (`pg-a-replica1`), and a config rewritten after a failover to name the promoted node as
 * the primary would give the old primary that name.
 */
import type { Knex } from 'knex';
import { createTableIfAbsent } from '../knex/create-table-if-absent.js';

export const PRIMARIES_TABLE = 'shardkit_primaries';

export interface PrimaryRecord {
  shard: string;
  node: string;
  address: string;
  epoch: number;
  switchedAt: number;
}

export class PrimaryRecords {
  private ready: Promise<void> | undefined;

  constructor(private readonly db: Knex) {}

  async all(): Promise<PrimaryRecord[]> {
    await this.ensureTable();
    const rows = await this.db(PRIMARIES_TABLE).select('shard', 'node', 'address', 'epoch', 'switched_at');
    return rows.map((row: Record<string, unknown>) => ({
      shard: String(row.shard),
      node: String(row.node),
      address: String(row.address),
      epoch: Number(row.epoch),
      switchedAt: Number(row.switched_at),
    }));
  }

  /** `node` is the primary of `shard` from now on. */
  async record(shard: string, node: string, address: string): Promise<PrimaryRecord> {
    await this.ensureTable();
    return this.db.transaction(async (trx) => {
      const current = await trx(PRIMARIES_TABLE).where({ shard }).forUpdate().first();
      const epoch = Number(current?.epoch ?? 0) + (current?.address === address ? 0 : 1);
      const row = { shard, node, address, epoch, switched_at: Date.now() };
      if (current) await trx(PRIMARIES_TABLE).where({ shard }).update(row);
      else await trx(PRIMARIES_TABLE).insert(row).onConflict('shard').merge();
      return { shard, node, address, epoch, switchedAt: row.switched_at };
    });
  }

  private ensureTable(): Promise<void> {
    this.ready ??= createTableIfAbsent(this.db, PRIMARIES_TABLE, (table) => {
      table.string('shard', 63).primary();
      table.string('node', 255).notNullable();
      table.string('address', 1000).notNullable();
      table.integer('epoch').notNullable();
      table.bigInteger('switched_at').notNullable();
    }).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }
}
