/**
 * The opt-in retry of a whole transaction after a serialization failure or a deadlock
 * (PostgreSQL 40001/40P01, MySQL ER_LOCK_DEADLOCK/ER_LOCK_WAIT_TIMEOUT): at most `retries` more
 * attempts, with jittered exponential backoff, never past the transaction's deadline.
 */
import { driverCodeOf } from '../errors.js';

const CONFLICT_CODES = new Set(['40001', '40P01', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT']);
const MAX_BACKOFF_MS = 200;

export async function retryingConflicts<T>(retries: number, deadline: number, attempt: () => Promise<T>): Promise<T> {
  const allowed = Math.max(0, Math.floor(retries));
  for (let tried = 0; ; tried++) {
    try {
      return await attempt();
    } catch (error) {
      const backoff = Math.min(MAX_BACKOFF_MS, 5 * 2 ** tried) * (0.5 + Math.random());
      if (tried >= allowed || !isConflict(error) || performance.now() + backoff >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }
}

function isConflict(error: unknown): boolean {
  const code = driverCodeOf(error) ?? driverCodeOf((error as { cause?: unknown } | null)?.cause);
  return code !== undefined && CONFLICT_CODES.has(code);
}
