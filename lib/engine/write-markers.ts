/**
 * Exactly-once writes across a primary switch. On a shard that can fail over, each write's
 * transaction first inserts a marker row with an id of its own; a repeat of the write (after its
 * primary died, its COMMIT lost in flight) inserts the same id first:
 *
 *   - the id is new: the first attempt did not commit on this node, and the repeat does the write;
 *   - the id is there: the first attempt committed (it reached this node before the switch), and
 *     the repeat stops, reporting the first attempt's results;
 *   - the first attempt is still committing on this node (a COMMIT waiting for a synchronous
 *     replica): the insert waits for it to end, and then one of the two above holds.
 *
 * A transaction id looked up after a promotion could not say as much: the promoted node hands
 * out again the ids whose WAL it never received. Markers are rows like any other, replicated with
 * the write, so the promoted node has exactly the markers of the writes it has.
 *
 *   shardkit_write_markers   id (key), created_at (ms); rows past `MARKER_RETENTION_MS` are
 *                            deleted by pruneMarkers (kit/primary-failover.ts runs it)
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { NodeHandle } from '../access/open-node.js';
import { createTableIfAbsent } from '../knex/create-table-if-absent.js';

export const MARKERS_TABLE = 'shardkit_write_markers';
/** Markers only matter while a write can still be repeated: far longer than any deadline. */
export const MARKER_RETENTION_MS = 60 * 60_000;

/** Unique-key violations: the marker is there already. */
const DUPLICATE_KEY = new Set(['23505', 'ER_DUP_ENTRY']);

/** One write's marker, kept across its attempts. */
export class WriteMarker {
  readonly id = randomUUID();
  /** The results of the attempt that reached COMMIT, for a repeat that finds it committed. */
  results: unknown[] | undefined;

  /**
   * Inserts the marker in `trx`; false when it was there already (an earlier attempt committed).
   * Any other failure is the attempt's.
   */
  async place(trx: Knex.Transaction, node: NodeHandle): Promise<boolean> {
    await ensureMarkersTable(node);
    try {
      // No savepoint: when the marker is there the transaction is rolled back anyway.
      await trx(MARKERS_TABLE).insert({ id: this.id, created_at: Date.now() });
      return true;
    } catch (error) {
      // The guarded client hands out typed errors: the driver's code is on them, or on their cause.
      const code = (error as { driverCode?: string }).driverCode ?? node.dialect.classifyError((error as Error).cause ?? error).driverCode;
      if (DUPLICATE_KEY.has(code ?? '')) return false;
      throw error;
    }
  }
}

const ensured = new WeakMap<NodeHandle, Promise<void>>();

/** The markers table on `node`, created once per process (a promoted replica has it by replication). */
function ensureMarkersTable(node: NodeHandle): Promise<void> {
  let ready = ensured.get(node);
  if (!ready) {
    ready = createTableIfAbsent(node.knex, MARKERS_TABLE, (table) => {
      table.string('id', 36).primary();
      table.bigInteger('created_at').notNullable().index();
    }).catch((error: unknown) => {
      ensured.delete(node);
      throw error;
    });
    ensured.set(node, ready);
  }
  return ready;
}

/** Deletes markers past their retention on `node`; absent table, nothing to do. */
export async function pruneMarkers(node: NodeHandle, now = Date.now()): Promise<number> {
  if (!(await node.knex.schema.hasTable(MARKERS_TABLE))) return 0;
  return node.knex(MARKERS_TABLE).where('created_at', '<', now - MARKER_RETENTION_MS).delete();
}
