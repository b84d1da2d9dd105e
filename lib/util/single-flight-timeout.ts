/**
 * Runs background probes so that they never pile up: at most one call per key is in flight,
 * and a caller waits at most `timeoutMs`. A call that outlives its timeout keeps its slot until
 * it settles, and later calls for that key fail at once instead of queueing behind it.
 */
export class SingleFlight {
  private readonly pending = new Map<string, Promise<unknown>>();

  async run<T>(key: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
    if (this.pending.has(key)) throw new Error(`the previous call (${key}) is still running`);
    const promise = call();
    this.pending.set(key, promise);
    const release = () => this.pending.delete(key);
    promise.then(release, release);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
