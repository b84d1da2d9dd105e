/**
 * The operator's degradation override, on the control database (the control shard's primary),
 * so that every kit instance follows it (`shardkit degrade set N`):
 *
 *   shardkit_degradation   one row (id 1): level, reason, set_by, set_at (ms), expires_at (ms,
 *                          null: until cleared)
 *
 * The table is created by the first `set`, idempotently (two instances may race: the loser sees
 * the winner's table); readers never create it, so a kit that was never overridden reads
 * nothing. Statements are critical (never shed, first in the queue) with a bound of their own:
 * the override must get through when the control shard is the one overloaded.
 */
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import { createTableIfAbsent } from '../knex/create-table-if-absent.js';

export const DEGRADATION_TABLE = 'shardkit_degradation';
const ROW_ID = 1;
const REASON_LENGTH = 500;
const SET_BY_LENGTH = 200;

export interface DegradationOverride {
  level: number;
  reason: string;
  /** Who set it (host and process, or what the caller said). */
  setBy: string;
  /** When (ms since the epoch). */
  setAt: number;
  /** When it stops applying (ms since the epoch); absent: until cleared. */
  expiresAt?: number;
}

export class DegradationOverrides {
  private ready: Promise<void> | undefined;
  private exists = false;

  constructor(
    private readonly db: Knex,
    /** Each statement's bound (ms). */
    private readonly timeoutMs: number,
  ) {}

  /** The stored override, expired or not; undefined when none was ever set or it was cleared. */
  async read(): Promise<DegradationOverride | undefined> {
    return this.scoped(async () => {
      this.exists ||= await this.db.schema.hasTable(DEGRADATION_TABLE);
      if (!this.exists) return undefined;
      const row = await this.db(DEGRADATION_TABLE).where('id', ROW_ID).first();
      return row ? toOverride(row) : undefined;
    });
  }

  async set(override: DegradationOverride): Promise<void> {
    await this.scoped(async () => {
      await this.ensureTable();
      await this.db(DEGRADATION_TABLE)
        .insert({
          id: ROW_ID,
          level: override.level,
          reason: override.reason.slice(0, REASON_LENGTH),
          set_by: override.setBy.slice(0, SET_BY_LENGTH),
          set_at: override.setAt,
          expires_at: override.expiresAt ?? null,
        })
        .onConflict('id')
        .merge();
    });
  }

  async clear(): Promise<void> {
    await this.scoped(async () => {
      this.exists ||= await this.db.schema.hasTable(DEGRADATION_TABLE);
      if (this.exists) await this.db(DEGRADATION_TABLE).where('id', ROW_ID).del();
    });
  }

  private ensureTable(): Promise<void> {
    this.ready ??= createTableIfAbsent(this.db, DEGRADATION_TABLE, (table) => {
      table.integer('id').primary();
      table.integer('level').notNullable();
      table.string('reason', REASON_LENGTH).notNullable();
      table.string('set_by', SET_BY_LENGTH).notNullable();
      table.bigInteger('set_at').notNullable();
      table.bigInteger('expires_at').nullable();
    }).then(
      () => {
        this.exists = true;
      },
      (error: unknown) => {
        this.ready = undefined;
        throw error;
      },
    );
    return this.ready;
  }

  private scoped<T>(work: () => Promise<T>): Promise<T> {
    return withScope({ priority: 'critical', timeoutMs: this.timeoutMs, purpose: 'control' }, work);
  }
}

function toOverride(row: Record<string, unknown>): DegradationOverride {
  const expiresAt = row.expires_at === null || row.expires_at === undefined ? undefined : Number(row.expires_at);
  return {
    level: Number(row.level),
    reason: String(row.reason),
    setBy: String(row.set_by),
    setAt: Number(row.set_at),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}
