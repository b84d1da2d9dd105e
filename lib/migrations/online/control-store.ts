/**
 * Where online migrations keep their state, shared by every application instance and runner:
 * three small tables on the control database (by default the global shard's primary).
 *
 *   shardkit_online_migrations  one row per migration: phase, version, state (JSON: backfill
 *                               checkpoints per shard, the last verify, transition history)
 *   shardkit_online_acks        per instance: the phase version it applies, and a lease
 *   shardkit_online_mismatches  shadow-read mismatches, with the key and what differed
 *
 * Phase changes are compare-and-set on `version`, so two runners cannot both move a migration;
 * state updates (checkpoints) are made by the runner holding the migration's lock.
 */
import type { Knex } from 'knex';
import type { ChangeFeed } from '../../dialect/change-feed.js';
import { MigrationConflictError } from '../../errors.js';
import type { Phase } from './phases.js';

export const MIGRATIONS_TABLE = 'shardkit_online_migrations';
export const ACKS_TABLE = 'shardkit_online_acks';
export const MISMATCHES_TABLE = 'shardkit_online_mismatches';
/** The LISTEN/NOTIFY channel of phase changes. */
export const CHANGES_CHANNEL = 'shardkit_online_migrations';

export interface BackfillCheckpoint {
  /** The last key copied, or null before the first batch. */
  lastKey: unknown[] | null;
  /** A walk by slot runs (a table with a slot column): every slot below this one is copied. */
  slot?: number;
  rows: number;
  done: boolean;
}

export interface VerifyReport {
  /** The phase version the verify ran under. */
  version: number;
  rowsChecked: number;
  chunks: number;
  differences: number;
  repaired: number;
  unrepaired: number;
  finishedAt: number;
}

export interface MigrationState {
  /** Checkpoints by backfill unit: the shard, or `table:shard` when several tables move together. */
  backfill: Record<string, BackfillCheckpoint>;
  verify?: VerifyReport;
  /** When the current shadow_read window began (ms), for counting its mismatches. */
  shadowSince?: number;
  /** A topology switch is under way: writes to the moving tables wait until every instance follows. */
  switching?: boolean;
  /** What the layer that owns the record keeps beside the phases (JSON), opaque to the store. */
  payload?: unknown;
  history: { at: number; from: Phase; to: Phase }[];
}

export interface MigrationRecord {
  name: string;
  phase: Phase;
  version: number;
  state: MigrationState;
  updatedAt: number;
}

export interface InstanceAck {
  instance: string;
  version: number;
  leaseUntil: number;
}

export class ControlStore {
  private ready: Promise<void> | undefined;
  private exists = false;

  constructor(
    readonly db: Knex,
    /** Where phase changes are announced, when the control database has a change feed. */
    readonly feed: ChangeFeed | undefined,
    /** What errors call a record: `online migration "users_v2"`. */
    private readonly describe: (name: string) => string = (name) => `online migration "${name}"`,
  ) {}

  /** Creates the control tables if they are missing (idempotent). */
  ensureTables(): Promise<void> {
    this.ready ??= this.createTables().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  async get(name: string): Promise<MigrationRecord | undefined> {
    await this.ensureTables();
    return this.read(name);
  }

  /** The record if the control tables exist, without creating them (instances that only follow). */
  async peek(name: string): Promise<MigrationRecord | undefined> {
    this.exists ||= await this.db.schema.hasTable(MIGRATIONS_TABLE);
    return this.exists ? this.read(name) : undefined;
  }

  private async read(name: string): Promise<MigrationRecord | undefined> {
    const row = await this.db(MIGRATIONS_TABLE).where('name', name).first();
    return row ? toRecord(row) : undefined;
  }

  /** The migration's record, created in phase `pending` when it does not exist yet. */
  async getOrCreate(name: string): Promise<MigrationRecord> {
    const existing = await this.get(name);
    if (existing) return existing;
    const state: MigrationState = { backfill: {}, history: [] };
    await this.db(MIGRATIONS_TABLE)
      .insert({ name, phase: 'pending', version: 0, state: JSON.stringify(state), updated_at: Date.now() })
      .onConflict('name')
      .ignore();
    return (await this.get(name))!;
  }

  /** Moves to `phase` if nobody moved the migration since `record` was read. */
  async transition(record: MigrationRecord, phase: Phase, state: MigrationState): Promise<MigrationRecord> {
    const at = Date.now();
    const history = (record.phase === phase ? state.history : [...state.history, { at, from: record.phase, to: phase }]).slice(-50);
    const next = { ...state, history };
    const changed = await this.db(MIGRATIONS_TABLE)
      .where({ name: record.name, version: record.version })
      .update({ phase, version: record.version + 1, state: JSON.stringify(next), updated_at: at });
    if (changed !== 1) throw new MigrationConflictError(this.describe(record.name), record.version);
    // A hint for instances listening; the others see the change at their next poll.
    await this.feed?.notify(this.db, CHANGES_CHANNEL, record.name).catch(() => undefined);
    return { name: record.name, phase, version: record.version + 1, state: next, updatedAt: at };
  }

  /** Saves state (checkpoints, reports) without changing the phase; refused if the phase moved. */
  async saveState(record: MigrationRecord, state: MigrationState): Promise<MigrationRecord> {
    const at = Date.now();
    const changed = await this.db(MIGRATIONS_TABLE)
      .where({ name: record.name, version: record.version })
      .update({ state: JSON.stringify(state), updated_at: at });
    if (changed !== 1) throw new MigrationConflictError(this.describe(record.name), record.version);
    return { ...record, state, updatedAt: at };
  }

  /** Deletes every trace of a migration: its record, acknowledgements and mismatches. */
  async remove(name: string): Promise<void> {
    await this.ensureTables();
    await Promise.all([
      this.db(MIGRATIONS_TABLE).where('name', name).del(),
      this.db(ACKS_TABLE).where('migration', name).del(),
      this.db(MISMATCHES_TABLE).where('migration', name).del(),
    ]);
  }

  async ack(name: string, instance: string, version: number, leaseMs: number): Promise<void> {
    await this.ensureTables();
    await this.db(ACKS_TABLE)
      .insert({ migration: name, instance, version, lease_until: Date.now() + leaseMs })
      .onConflict(['migration', 'instance'])
      .merge(['version', 'lease_until']);
  }

  async forget(name: string, instance: string): Promise<void> {
    await this.db(ACKS_TABLE).where({ migration: name, instance }).del();
  }

  /** Instances whose lease has not run out. */
  async liveInstances(name: string): Promise<InstanceAck[]> {
    await this.ensureTables();
    const rows = await this.db(ACKS_TABLE).where('migration', name).where('lease_until', '>', Date.now());
    return rows.map((row) => ({ instance: String(row.instance), version: Number(row.version), leaseUntil: Number(row.lease_until) }));
  }

  async recordMismatch(name: string, version: number, key: unknown[], detail: string): Promise<void> {
    await this.ensureTables();
    await this.db(MISMATCHES_TABLE).insert({
      migration: name,
      version,
      key_text: JSON.stringify(key),
      detail: detail.slice(0, 2000),
      at: Date.now(),
    });
  }

  async mismatchesSince(name: string, since: number): Promise<{ key: string; detail: string; at: number }[]> {
    await this.ensureTables();
    const rows = await this.db(MISMATCHES_TABLE).where('migration', name).where('at', '>=', since).orderBy('at');
    return rows.map((row) => ({ key: String(row.key_text), detail: String(row.detail), at: Number(row.at) }));
  }

  /**
   * Creates the tables; instances starting together race to do so, and PostgreSQL can fail a
   * CREATE TABLE IF NOT EXISTS that loses the race, so a failed attempt is retried.
   */
  private async createTables(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.createTablesOnce();
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  private async createTablesOnce(): Promise<void> {
    // knex's `schema` is a new builder on every access; one kept around would pile up statements.
    const schema = () => this.db.schema;
    if (!(await schema().hasTable(MIGRATIONS_TABLE))) {
      await schema().createTable(MIGRATIONS_TABLE, (table) => {
        table.string('name', 100).primary();
        table.string('phase', 20).notNullable();
        table.integer('version').notNullable();
        table.text('state').notNullable();
        table.bigInteger('updated_at').notNullable();
      });
    }
    if (!(await schema().hasTable(ACKS_TABLE))) {
      await schema().createTable(ACKS_TABLE, (table) => {
        table.string('migration', 100).notNullable();
        table.string('instance', 64).notNullable();
        table.integer('version').notNullable();
        table.bigInteger('lease_until').notNullable();
        table.primary(['migration', 'instance']);
      });
    }
    if (!(await schema().hasTable(MISMATCHES_TABLE))) {
      await schema().createTable(MISMATCHES_TABLE, (table) => {
        table.increments('id');
        table.string('migration', 100).notNullable();
        table.integer('version').notNullable();
        table.text('key_text').notNullable();
        table.text('detail').notNullable();
        table.bigInteger('at').notNullable();
      });
    }
  }
}

function toRecord(row: Record<string, unknown>): MigrationRecord {
  return {
    name: String(row.name),
    phase: row.phase as Phase,
    version: Number(row.version),
    state: JSON.parse(String(row.state)) as MigrationState,
    updatedAt: Number(row.updated_at),
  };
}
