/**
 * Worker ids for global IDs, leased from the control database so that two processes never make
 * IDs as the same worker: one row per (space, worker) in `shardkit_id_workers`, claimed by
 * compare-and-set, renewed by a heartbeat, released on close.
 *
 *   expires_at  the lease's bound: its owner makes IDs with earlier times only, and whoever takes
 *               the worker next starts at this time (its `floor`), so owners never overlap even
 *               when their clocks disagree; a lease is free once its expires_at has passed
 *
 * A renewal writes the new bound before the generator may use it; a renewal that finds the row
 * taken (the lease lapsed while this process was stalled) drops the lease and claims another
 * worker. Statements run through the control shard's guarded primary.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import { driverCodeOf, IdUnavailableError } from '../errors.js';
import type { WorkerLease } from './id-generator.js';
import { type IdLayout, maxWorkers, workerSpace } from './id-layout.js';

export const ID_WORKERS_TABLE = 'shardkit_id_workers';

export interface LeaseOptions {
  /** How long a lease lasts without renewal. Default 30000. */
  leaseMs?: number;
  clock?: () => number;
}

interface WorkerRow {
  worker: number;
  owner: string | null;
  expires_at: number | string;
}

export class WorkerLeases {
  readonly owner = randomUUID();
  private current: WorkerLease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly leaseMs: number;
  private readonly clock: () => number;
  private closed = false;

  constructor(
    private readonly db: Knex,
    private readonly layout: IdLayout,
    /** The latest time the generator used, so that a renewal or release never bounds below it. */
    private readonly lastUsed: () => number,
    options: LeaseOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.clock = options.clock ?? Date.now;
  }

  lease(): WorkerLease | undefined {
    return this.current;
  }

  /** Claims a worker and starts renewing it. */
  async start(): Promise<void> {
    await this.ensureTable();
    await this.claim();
    this.schedule();
  }

  /** Stops renewing and frees the worker for the next owner, bounded by the last time used. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const lease = this.current;
    this.current = undefined;
    if (!lease) return;
    await this.run(() =>
      this.db(ID_WORKERS_TABLE)
        .where({ space: workerSpace(this.layout), worker: lease.worker, owner: this.owner })
        .update({ owner: null, expires_at: Math.max(this.lastUsed() + 1, lease.floor) }),
    );
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.renew()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.leaseMs / 3);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    const lease = this.current;
    if (!lease) return this.claim();
    // Never lower a bound already handed to the generator: IDs below it may exist.
    const bound = Math.max(this.bound(), lease.validUntil);
    const renewed = await this.run(() =>
      this.db(ID_WORKERS_TABLE).where({ space: workerSpace(this.layout), worker: lease.worker, owner: this.owner }).update({ expires_at: bound }),
    );
    if (Number(renewed) === 1) {
      if (this.current === lease) this.current = { ...lease, validUntil: bound };
      return;
    }
    // Someone took the worker after the lease lapsed: its IDs start at our old bound.
    this.current = undefined;
    if (!this.closed) await this.claim();
  }

  /** The next lease bound: a lease period past now or past the last time used, whichever is later. */
  private bound(): number {
    return Math.max(this.clock(), this.lastUsed()) + this.leaseMs;
  }

  private async claim(): Promise<void> {
    const space = workerSpace(this.layout);
    const rows = (await this.run(() => this.db(ID_WORKERS_TABLE).where({ space }).select('worker', 'owner', 'expires_at'))) as WorkerRow[];
    const byWorker = new Map(rows.map((row) => [Number(row.worker), row]));
    const now = this.clock();
    for (let worker = 0; worker < maxWorkers(this.layout); worker++) {
      const row = byWorker.get(worker);
      const bound = this.bound();
      if (!row) {
        const inserted = await this.run(() =>
          this.db(ID_WORKERS_TABLE)
            .insert({ space, worker, owner: this.owner, expires_at: bound })
            .then(
              () => true,
              (error: unknown) => {
                // Another process inserted it first; anything else is a real failure.
                if (isUniqueViolation(error)) return false;
                throw error;
              },
            ),
        );
        if (inserted) return this.take(worker, 0, bound);
        continue;
      }
      const expiresAt = Number(row.expires_at);
      if (expiresAt > now) continue;
      // Compare-and-set on the row as read: of two claimers, one wins.
      const claimed = await this.run(() =>
        this.db(ID_WORKERS_TABLE)
          .where({ space, worker, expires_at: row.expires_at })
          .where((owner) => (row.owner === null ? owner.whereNull('owner') : owner.where('owner', row.owner)))
          .update({ owner: this.owner, expires_at: Math.max(bound, expiresAt + this.leaseMs) }),
      );
      if (Number(claimed) === 1) return this.take(worker, expiresAt, Math.max(bound, expiresAt + this.leaseMs));
    }
    // Leases of dead processes lapse, so a later try can succeed.
    throw new IdUnavailableError(`all ${maxWorkers(this.layout)} worker ids of the ${space} layout are leased; use the 'bigint' or 'string' format for more`, this.leaseMs);
  }

  private take(worker: number, floor: number, validUntil: number): void {
    this.current = { worker, floor, validUntil };
  }

  private async ensureTable(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (await this.run(() => this.db.schema.hasTable(ID_WORKERS_TABLE))) return;
        await this.run(() =>
          this.db.schema.createTable(ID_WORKERS_TABLE, (table) => {
            table.string('space', 16).notNullable();
            table.integer('worker').notNullable();
            table.string('owner', 64).nullable();
            table.bigInteger('expires_at').notNullable();
            table.primary(['space', 'worker']);
          }),
        );
        return;
      } catch (error) {
        // Processes starting together race to create the table; the loser retries and finds it.
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  }

  private run<T>(work: () => PromiseLike<T>): Promise<T> {
    return withScope({ priority: 'critical', purpose: 'maintenance' }, () => work());
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = driverCodeOf(error);
  return code === '23505' || code === 'ER_DUP_ENTRY';
}
