/**
 * After a write commits, the session records its shard primary's position (LSN, GTID set), so
 * that a later read of the session waits for a replica that has it, or goes to the primary, and
 * skips a cached entry that does not include it (another process's cache has not seen the write).
 * Shards without replicas record it only for a kit that caches reads (`session.everyShard`).
 */
import { withScope } from '../access/call-scope.js';
import type { ShardHandle } from '../topology/topology.js';
import type { ReadSession } from './read-session.js';

/**
 * The primary's position after a write: a read carrying it sees the write. The write has
 * committed either way, so a position that cannot be read pins the session to the primary
 * instead of failing the write.
 */
export async function recordWritePosition(shard: ShardHandle, session: ReadSession, deadline: number): Promise<void> {
  const signals = shard.primary.dialect.replication;
  if (!signals || (shard.replicas.length === 0 && !session.everyShard)) return;
  // Within the write's deadline: a position that cannot be read in time pins the session instead.
  const state = await withScope({ priority: 'critical', deadline, purpose: 'query' }, () => signals.primaryState(shard.primary.knex)).catch(() => undefined);
  if (state?.position === undefined) session.requirePrimary(shard.name);
  else session.record(shard.name, state.position);
}
