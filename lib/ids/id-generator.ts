/**
 * Makes global IDs (id-layout.ts) for one leased worker. Uniqueness never depends on clocks:
 *
 *   - an ID's time is never earlier than the last one's (a clock that goes back is not followed:
 *     the generator keeps counting from its last millisecond, moving to the next one when the
 *     sequence runs out), so one worker never repeats (time, sequence);
 *   - a worker's IDs stay below its lease's `validUntil`, and the next owner of the worker starts
 *     at the `floor` the lease table recorded (the previous owner's bound), so owners never
 *     overlap, whatever their clocks say.
 *
 * When keeping those rules would need waiting (the clock went back further than `maxAheadMs`,
 * the lease ends before its heartbeat renewed it, no worker is leased), `next()` throws a
 * retryable IdUnavailableError with `retryAfterMs` instead of blocking or guessing.
 */
import { IdUnavailableError } from '../errors.js';
import { composeId, type IdLayout, lastTimestamp, maxSequence } from './id-layout.js';

export interface WorkerLease {
  worker: number;
  /** IDs of this lease have times below this (ms since 1970). */
  validUntil: number;
  /** The first time this lease may use. */
  floor: number;
}

export interface GeneratorOptions {
  /** The current lease, or undefined while none is held. */
  lease(): WorkerLease | undefined;
  /** Milliseconds since 1970; injected by tests. */
  clock?: () => number;
  /** How far IDs may run ahead of the clock (after it went back) before next() refuses. Default 1000. */
  maxAheadMs?: number;
}

export class IdGenerator {
  private lastTime = 0;
  private sequence = -1;
  private worker = -1;
  private readonly clock: () => number;
  private readonly maxAheadMs: number;
  private readonly maxSequence: number;

  constructor(
    readonly layout: IdLayout,
    private readonly options: GeneratorOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.maxAheadMs = options.maxAheadMs ?? 1000;
    this.maxSequence = maxSequence(layout);
  }

  /** The next ID: unique across workers, processes and restarts, in time order. */
  next(): number | bigint | string {
    const lease = this.options.lease();
    if (!lease) throw new IdUnavailableError('no worker id is leased (the control database has not answered yet, or the lease was lost)', 1000);
    const now = this.clock();
    let time = Math.max(now, this.lastTime, lease.floor);
    let sequence = lease.worker === this.worker && time === this.lastTime ? this.sequence + 1 : 0;
    if (sequence > this.maxSequence) {
      time += 1;
      sequence = 0;
    }
    if (time - now > this.maxAheadMs) {
      throw new IdUnavailableError(`the clock is ${time - now} ms behind the last id; ids resume when it catches up`, time - now - this.maxAheadMs);
    }
    if (time >= lease.validUntil) throw new IdUnavailableError('the worker lease ends before its renewal was confirmed', 100);
    if (time > lastTimestamp()) throw new IdUnavailableError('the id layout has run out of time bits', Number.POSITIVE_INFINITY, false);
    this.lastTime = time;
    this.sequence = sequence;
    this.worker = lease.worker;
    return composeId(this.layout, time, lease.worker, sequence);
  }

  /** The latest time an ID used, for the lease's renewal and release. */
  get lastUsed(): number {
    return this.lastTime;
  }
}
