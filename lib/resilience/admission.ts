/**
 * Admission control for one node: at most `maxInFlight` calls hold a connection at once (or, with
 * an adaptive limit, as many as its measured latency allows: adaptive-limit.ts); the
 * rest wait in a queue of at most `maxQueued`, served critical first, then normal, then
 * background (FIFO within a priority). When the queue is full, the lowest-priority waiter is
 * shed to make room for a higher one, so background work goes first, then normal; a call that
 * finds no room fails at once with ShardOverloadedError and a `retryAfterMs` estimate. A
 * critical call is never shed: with only critical waiters ahead it queues past the bound.
 * Once the average hold of a call is known, a call that would wait past its deadline (the
 * waiters ahead of it, drained `maxInFlight` at a time) is shed on arrival, with that wait as
 * its `retryAfterMs`, instead of waiting to time out.
 * Background work may only fill half the queue. A waiter leaves the queue when its deadline
 * passes (QueryTimeoutError) or its signal aborts (QueryCancelledError).
 *
 * There is one place that admits (`admit`) and one that releases (`Ticket.release`, which
 * counts once however often it is called), so the count of admitted calls cannot drift.
 */
import type { AdaptiveLimit } from './adaptive-limit.js';
import { KitClosedError, QueryCancelledError, type QueryPriority, QueryTimeoutError, ShardOverloadedError } from '../errors.js';

const PRIORITIES: readonly QueryPriority[] = ['critical', 'normal', 'background'];
/** Hold times the average must rest on before it predicts a wait. */
const PREDICT_AFTER = 20;

export interface AdmissionLimits {
  maxInFlight: number;
  maxQueued: number;
}

export interface Ticket {
  /** Gives the slot back; later calls do nothing. */
  release(): void;
}

interface Waiter {
  grant: (ticket: Ticket) => void;
  fail: (error: Error) => void;
  /** Clears the waiter's timer and abort listener. */
  cleanup: () => void;
}

/** Names the node in errors. */
export interface AdmissionSubject {
  shard: string;
  node: string;
}

export class Admission {
  private admittedCount = 0;
  private readonly queues: Record<QueryPriority, Waiter[]> = { critical: [], normal: [], background: [] };
  private shedCount = 0;
  private averageMs = 5;
  /** Hold times observed: the average predicts waits once it rests on PREDICT_AFTER of them. */
  private observed = 0;
  private closed = false;

  constructor(
    private readonly subject: AdmissionSubject,
    private readonly limits: AdmissionLimits,
    /** With loadShedding.adaptive: the calls admitted at once follow latency, up to maxInFlight. */
    private readonly adaptive?: AdaptiveLimit,
  ) {}

  /** The calls admitted at once now. */
  get limit(): number {
    return this.adaptive?.current ?? this.limits.maxInFlight;
  }

  get admitted(): number {
    return this.admittedCount;
  }

  get queued(): number {
    return this.queues.critical.length + this.queues.normal.length + this.queues.background.length;
  }

  get shed(): number {
    return this.shedCount;
  }

  /** Feeds the drain estimate behind `retryAfterMs` with how long an admitted call held its slot. */
  observeHoldMs(ms: number): void {
    this.averageMs += (ms - this.averageMs) / 10;
    this.observed++;
    if (!this.adaptive) return;
    this.adaptive.observe(ms, this.admittedCount);
    // A limit that grew admits waiters at once, not only as calls end.
    while (this.admittedCount < this.limit && this.queued > 0) {
      this.admittedCount++;
      this.handOver();
    }
  }

  /** A slot, now or once one frees up; `deadline` is a performance.now() time. */
  admit(priority: QueryPriority, deadline: number, signal?: AbortSignal): Promise<Ticket> {
    if (this.closed) return Promise.reject(new KitClosedError());
    if (signal?.aborted) return Promise.reject(new QueryCancelledError(signal.reason));
    if (this.admittedCount < this.limit && this.queued === 0) {
      this.admittedCount++;
      return Promise.resolve(this.ticket());
    }
    // Shed at once what the queue would keep past its deadline: the caller learns when to come back now, not when its time is up.
    const expectedWaitMs = this.expectedWaitMs(priority);
    if (priority !== 'critical' && expectedWaitMs !== undefined && performance.now() + expectedWaitMs > deadline) {
      return Promise.reject(this.overloaded(priority, expectedWaitMs));
    }
    if (!this.hasRoomFor(priority)) {
      const victim = this.lowestWaiterBelow(priority);
      if (victim) {
        victim.waiter.cleanup();
        victim.waiter.fail(this.overloaded(victim.priority));
      } else if (priority !== 'critical') {
        return Promise.reject(this.overloaded(priority));
      }
      // Critical work is never shed: past a queue of critical waiters it queues anyway, still bounded by its deadline.
    }
    return new Promise<Ticket>((resolve, reject) => {
      const remaining = deadline - performance.now();
      const waiter: Waiter = {
        grant: resolve,
        fail: reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      const leave = (error: Error) => {
        const queue = this.queues[priority];
        const index = queue.indexOf(waiter);
        if (index < 0) return;
        queue.splice(index, 1);
        waiter.cleanup();
        reject(error);
      };
      const onAbort = () => leave(new QueryCancelledError(signal?.reason));
      const timer = setTimeout(
        () => leave(new QueryTimeoutError(this.subject.shard, this.subject.node, 'admission', Math.max(0, Math.round(remaining)), `${this.queued} calls queued`)),
        Math.max(0, remaining),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queues[priority].push(waiter);
    });
  }

  /** Fails every waiter: the kit is closing. */
  close(): void {
    this.closed = true;
    for (const priority of PRIORITIES) {
      for (const waiter of this.queues[priority].splice(0)) {
        waiter.cleanup();
        waiter.fail(new KitClosedError());
      }
    }
  }

  private ticket(): Ticket {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.handOver();
      },
    };
  }

  /** A freed slot goes to the first waiter of the highest priority, or back to the pool of slots (or away, past a limit that shrank). */
  private handOver(): void {
    if (this.admittedCount > this.limit) {
      this.admittedCount--;
      return;
    }
    for (const priority of PRIORITIES) {
      const next = this.queues[priority].shift();
      if (next) {
        next.cleanup();
        next.grant(this.ticket());
        return;
      }
    }
    this.admittedCount--;
  }

  private hasRoomFor(priority: QueryPriority): boolean {
    const capacity = priority === 'background' ? Math.floor(this.limits.maxQueued / 2) : this.limits.maxQueued;
    return this.queued < capacity;
  }

  /** Removes and returns the newest waiter of the lowest priority below `priority`. */
  private lowestWaiterBelow(priority: QueryPriority): { waiter: Waiter; priority: QueryPriority } | undefined {
    for (const candidate of [...PRIORITIES].reverse()) {
      if (PRIORITIES.indexOf(candidate) <= PRIORITIES.indexOf(priority)) return undefined;
      const waiter = this.queues[candidate].pop();
      if (waiter) return { waiter, priority: candidate };
    }
    return undefined;
  }

  /**
   * How long a call of `priority` arriving now would wait for a slot: the waiters it would queue
   * behind, drained `maxInFlight` at a time at the average hold. Undefined until that average
   * rests on enough calls.
   */
  private expectedWaitMs(priority: QueryPriority): number | undefined {
    if (this.observed < PREDICT_AFTER) return undefined;
    let ahead = 0;
    for (const candidate of PRIORITIES.slice(0, PRIORITIES.indexOf(priority) + 1)) ahead += this.queues[candidate].length;
    return (this.averageMs * (ahead + 1)) / this.limit;
  }

  private overloaded(priority: QueryPriority, expectedWaitMs?: number): ShardOverloadedError {
    this.shedCount++;
    const waitMs = expectedWaitMs ?? (this.averageMs * (this.queued + 1)) / this.limit;
    return new ShardOverloadedError(this.subject.shard, this.subject.node, priority, Math.max(10, Math.round(waitMs)));
  }
}
