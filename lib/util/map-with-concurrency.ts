/**
 * Maps over items with at most `limit` calls in flight, keeping results in input order. When
 * `stopOnError` is set, items not yet started after a failure are skipped (reported as
 * `skipped`), which is how a failed schema migration stops a run without abandoning shards
 * already in progress. An aborted `signal` likewise stops starting new items.
 */
export type Outcome<T> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown } | { status: 'skipped' };

export async function mapWithConcurrency<I, T>(
  items: readonly I[],
  limit: number,
  task: (item: I, index: number) => Promise<T>,
  options: { stopOnError?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<Outcome<T>[]> {
  const outcomes: Outcome<T>[] = items.map(() => ({ status: 'skipped' }));
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !(failed && options.stopOnError) && !options.signal?.aborted) {
      const index = next++;
      try {
        outcomes[index] = { status: 'fulfilled', value: await task(items[index]!, index) };
      } catch (reason) {
        failed = true;
        outcomes[index] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return outcomes;
}
