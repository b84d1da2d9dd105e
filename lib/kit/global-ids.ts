/**
 * The kit's global ID generators (lib/ids/): one per format, each with a worker leased from the
 * control database, made on first use and released when the kit closes.
 */
import type { Knex } from 'knex';
import { IdGenerator } from '../ids/id-generator.js';
import { type IdFormat, layoutOf } from '../ids/id-layout.js';
import { WorkerLeases } from '../ids/worker-lease.js';

export interface IdOptions {
  /** 'number' (default: below 2^53, exact in JavaScript), 'bigint' or 'string' (64-bit layout). */
  format?: IdFormat;
}

export interface GlobalIdOptions {
  leaseMs?: number;
  clock?: () => number;
  maxAheadMs?: number;
}

export class GlobalIds {
  private readonly generators = new Map<IdFormat, Promise<{ generator: IdGenerator; leases: WorkerLeases }>>();

  constructor(
    private readonly control: Knex,
    private readonly options: GlobalIdOptions = {},
  ) {}

  /** A generator of the format, once its worker is leased. */
  async generator(format: IdFormat = 'number'): Promise<IdGenerator> {
    let entry = this.generators.get(format);
    if (!entry) {
      entry = this.open(format);
      this.generators.set(format, entry);
      // A failed lease is not kept: the next call tries again.
      entry.catch(() => this.generators.delete(format));
    }
    return (await entry).generator;
  }

  async close(): Promise<void> {
    const entries = await Promise.allSettled(this.generators.values());
    this.generators.clear();
    await Promise.allSettled(entries.map((entry) => (entry.status === 'fulfilled' ? entry.value.leases.close() : undefined)));
  }

  private async open(format: IdFormat): Promise<{ generator: IdGenerator; leases: WorkerLeases }> {
    const layout = layoutOf(format);
    let generator: IdGenerator | undefined;
    const leases = new WorkerLeases(this.control, layout, () => generator?.lastUsed ?? 0, this.options);
    generator = new IdGenerator(layout, { lease: () => leases.lease(), ...this.options });
    await leases.start();
    return { generator, leases };
  }
}
