/** Latency sampling for benchmarks: interleaved runs, so that drift hits every variant alike. */

export function percentile(samples: readonly number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

/** Runs each variant `rounds` times, one call of each per round, and returns their durations in ms. */
export async function sampleInterleaved(
  variants: Record<string, (round: number) => Promise<unknown>>,
  rounds: number,
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, call] of Object.entries(variants)) {
      const started = performance.now();
      await call(round);
      samples[name]!.push(performance.now() - started);
    }
  }
  return samples;
}

/** Wall time of `work`, in seconds. */
export async function seconds(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}
