/**
 * Memory of this process while `work` runs, in MB: resident memory at the start and at its peak
 * (sampled every 200 ms), and the heap still in use after a full collection at the start and at
 * the end (with --expose-gc, which npm run bench passes): what the work retains, apart from the
 * garbage the collector had not yet reclaimed when RSS peaked.
 */
export interface MemoryUse {
  startRssMb: number;
  peakRssMb: number;
  startHeapMb: number | undefined;
  endHeapMb: number | undefined;
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

function heapAfterCollection(): number | undefined {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) return undefined;
  collect();
  return mb(process.memoryUsage().heapUsed);
}

export async function withPeakRss<T>(work: () => Promise<T>): Promise<{ result: T } & MemoryUse> {
  const startHeapMb = heapAfterCollection();
  const startRss = process.memoryUsage.rss();
  let peakRss = startRss;
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 200);
  try {
    const result = await work();
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    return { result, startRssMb: mb(startRss), peakRssMb: mb(peakRss), startHeapMb, endHeapMb: heapAfterCollection() };
  } finally {
    clearInterval(timer);
  }
}
