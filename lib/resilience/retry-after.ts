/**
 * When a caller should come back, from a shardkit error, and the HTTP answer that says so: a
 * service on shardkit answers a shed or unavailable shard with 503 and `Retry-After`, so that
 * its clients' retries spread over the node's estimate instead of storming it.
 *
 *   } catch (error) {
 *     const overloaded = overloadResponse(error);
 *     if (overloaded) return res.status(overloaded.status).set(overloaded.headers).end();
 *     throw error;
 *   }
 */
import { ScatterError, ShardKitError } from '../errors.js';

/** The wait a retryable error asks for (ms), or undefined when it names none or a retry cannot succeed. */
export function retryAfterOf(error: unknown): number | undefined {
  if (!(error instanceof ShardKitError) || !error.retryable) return undefined;
  if (error instanceof ScatterError) {
    // A scatter can be retried once every shard that failed it can: the longest of their waits.
    const waits = error.failures.map((failure) => retryAfterOf(failure.error));
    return waits.length > 0 && waits.every((wait) => wait !== undefined) ? Math.max(...(waits as number[])) : undefined;
  }
  const wait = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof wait === 'number' && Number.isFinite(wait) ? Math.max(0, wait) : undefined;
}

export interface OverloadResponse {
  status: 503;
  /** `Retry-After` in whole seconds, at least 1 (the header has no finer unit). */
  headers: { 'Retry-After': string };
}

/** 503 with `Retry-After` for an error that names its wait; undefined for any other error. */
export function overloadResponse(error: unknown): OverloadResponse | undefined {
  const wait = retryAfterOf(error);
  if (wait === undefined) return undefined;
  return { status: 503, headers: { 'Retry-After': String(Math.max(1, Math.ceil(wait / 1000))) } };
}
