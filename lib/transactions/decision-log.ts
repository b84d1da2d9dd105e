/**
 * The decision log of two-phase commits: one row per cross-shard transaction, on the control
 * database, written after every participant prepared and before any commits. The row is the
 * commit point: a transaction whose row says commit is committed on every participant (by its
 * coordinator, or by recovery if that dies); one without a row is rolled back. Recovery that
 * gives up on a coordinator writes an abort row first, and a coordinator writes its commit row
 * with a plain insert on the same key, so exactly one of them wins.
 *
 *   shardkit_tx_decisions   gtrid (key), decision ('commit' | 'abort'), participants (JSON: the
 *                           shards in participant order), created_at (ms)
 */
import type { Knex } from 'knex';
import { createTableIfAbsent } from '../knex/create-table-if-absent.js';

export const DECISIONS_TABLE = 'shardkit_tx_decisions';

export type Decision = 'commit' | 'abort';

export interface DecisionRecord {
  gtrid: string;
  decision: Decision;
  participants: string[];
  createdAt: number;
}

export class DecisionLog {
  private ready: Promise<void> | undefined;
  private exists = false;

  constructor(readonly db: Knex) {}

  ensureTable(): Promise<void> {
    this.ready ??= this.createTable().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /**
   * Records `decision` unless one exists; the decision that stands (ours, or the one that won).
   * A failure to reach the database leaves the outcome to whoever reads the row later.
   */
  async decide(gtrid: string, decision: Decision, participants: readonly string[]): Promise<Decision> {
    await this.ensureTable();
    await this.db(DECISIONS_TABLE)
      .insert({ gtrid, decision, participants: JSON.stringify(participants), created_at: Date.now() })
      .onConflict('gtrid')
      .ignore();
    const stands = await this.get(gtrid);
    if (!stands) throw new Error(`the decision of ${gtrid} was written but cannot be read back`);
    return stands.decision;
  }

  async get(gtrid: string): Promise<DecisionRecord | undefined> {
    return (await this.getMany([gtrid])).get(gtrid);
  }

  async getMany(gtrids: readonly string[]): Promise<Map<string, DecisionRecord>> {
    const found = new Map<string, DecisionRecord>();
    if (gtrids.length === 0 || !(await this.hasTable())) return found;
    const rows: { gtrid: string; decision: Decision; participants: string; created_at: unknown }[] = await this.db(DECISIONS_TABLE).whereIn('gtrid', [...gtrids]);
    for (const row of rows) found.set(row.gtrid, { gtrid: row.gtrid, decision: row.decision, participants: JSON.parse(row.participants), createdAt: Number(row.created_at) });
    return found;
  }

  /** Every decision, oldest first (recovery forgets those no participant waits on). */
  async all(limit: number): Promise<DecisionRecord[]> {
    if (!(await this.hasTable())) return [];
    const rows: { gtrid: string }[] = await this.db(DECISIONS_TABLE).select('gtrid').orderBy('created_at').limit(limit);
    return [...(await this.getMany(rows.map((row) => row.gtrid))).values()];
  }

  async forget(gtrids: readonly string[]): Promise<void> {
    if (gtrids.length > 0) await this.db(DECISIONS_TABLE).whereIn('gtrid', [...gtrids]).del();
  }

  /** Readers do not create the table: a kit that never ran an atomic transaction has none. */
  private async hasTable(): Promise<boolean> {
    this.exists ||= await this.db.schema.hasTable(DECISIONS_TABLE);
    return this.exists;
  }

  private createTable(): Promise<void> {
    return createTableIfAbsent(this.db, DECISIONS_TABLE, (table) => {
      table.string('gtrid', 64).primary();
      table.string('decision', 8).notNullable();
      table.text('participants').notNullable();
      table.bigInteger('created_at').notNullable();
    });
  }
}
