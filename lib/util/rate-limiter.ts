/**
 * One rate shared by every caller (a leaky bucket on virtual time): each `take(n)` reserves
 * n / perSecond seconds after the previous reservation and waits until its turn, so callers
 * together never exceed the rate, however many there are (the shards and tables of a backfill).
 */
export class RateLimiter {
  private nextFree = performance.now();

  constructor(private readonly perSecond: number) {}

  async take(amount: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    const start = Math.max(this.nextFree, now);
    this.nextFree = start + (amount * 1000) / this.perSecond;
    if (start > now) await sleep(start - now, signal);
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
