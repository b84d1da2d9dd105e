/**
 * One rate shared by every caller (a leaky bucket on virtual time): each `take(n)` reserves the
 * n / perSecond seconds after the previous reservation and returns at the end of its own, so
 * callers together never exceed the rate over any stretch since the start, however many there
 * are (the shards and tables of a backfill): n rows are let through only after n / perSecond.
 */
export class RateLimiter {
  private nextFree = performance.now();

  constructor(private readonly perSecond: number) {}

  async take(amount: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    this.nextFree = Math.max(this.nextFree, now) + (amount * 1000) / this.perSecond;
    await sleep(this.nextFree - now, signal);
  }
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
