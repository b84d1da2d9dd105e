/**
 * Maps over items with at most `limit` calls in flight (p-limit), keeping results in input
 * order, each as an outcome rather than a thrown error, so that a caller can say which items
 * failed and which succeeded. With `stopOnError`, items not yet started after a failure are
 * skipped (reported as `skipped`): how a failed schema migration stops a run without abandoning
 * shards already in progress. An aborted `signal` likewise skips items not yet started.
 */
import pLimit from 'p-limit';

export type Outcome<T> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown } | { status: 'skipped' };

export async function mapWithConcurrency<I, T>(
  items: readonly I[],
  limit: number,
  task: (item: I, index: number) => Promise<T>,
  options: { stopOnError?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<Outcome<T>[]> {
  const run = pLimit(Math.max(1, limit));
  let failed = false;
  return Promise.all(
    items.map((item, index) =>
      run(async (): Promise<Outcome<T>> => {
        if ((failed && options.stopOnError) || options.signal?.aborted) return { status: 'skipped' };
        try {
          return { status: 'fulfilled', value: await task(item, index) };
        } catch (reason) {
          failed = true;
          return { status: 'rejected', reason };
        }
      }),
    ),
  );
}
