/**
 * A scatter's read that one node shed (ShardOverloadedError) is tried again after the
 * `retryAfterMs` the node estimated (at least a doubling backoff), jittered so that the retries of many callers spread out,
 * for as long as the call's deadline leaves room: one saturated shard then slows a scatter
 * instead of failing it. Only reads: a shed statement never ran, and a read is safe to repeat
 * anyway. Other errors, and a shed whose wait would pass the deadline, stand.
 */
import { QueryCancelledError, ShardOverloadedError } from '../errors.js';

/** Attempts after the first. */
const MAX_RETRIES = 8;
/** The shortest wait before the first retry; each retry waits at least twice as long as the one before. */
const FIRST_WAIT_MS = 10;

export async function retryShed<T>(attempt: () => Promise<T>, deadline: number, signal?: AbortSignal): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof ShardOverloadedError) || retry >= MAX_RETRIES) throw error;
      // The node's estimate, but never less than a doubling backoff: an estimate learned from few calls may be far too short.
      const waitMs = Math.max(error.retryAfterMs, FIRST_WAIT_MS * 2 ** retry) * (0.5 + Math.random());
      if (performance.now() + waitMs >= deadline) throw error;
      await pause(waitMs, signal);
    }
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new QueryCancelledError(signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new QueryCancelledError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
