/**
 * A slot plan measured on the real data: for every sharded table, how many rows each shard would
 * send to each other shard. Each shard's shard-key values are read grouped (key, count) in keyset
 * batches, so a table is read once by its key index, without OFFSET and without holding a
 * transaction. Rows found on a shard that does not own them under the current ring (leftovers of
 * an interrupted manual move, say) are counted as misplaced: a plan should not hide them.
 */
import type { ResolvedConfig } from '../config/config-types.js';
import { whereAfter } from '../engine/keyset-pagination.js';
import type { HashRing } from '../hashing/hash-ring.js';
import type { ShardDatabases } from '../access/shard-databases.js';
import type { SlotMovePlan } from './slot-moves.js';

export interface RowFlow {
  from: string;
  to: string;
  rows: number;
}

export interface TableMoves {
  table: string;
  rows: number;
  movingRows: number;
  /** Rows stored on a shard that the current ring does not make their owner. */
  misplacedRows: number;
  flows: RowFlow[];
}

export interface CountOptions {
  batchSize?: number;
  onProgress?: (progress: { table: string; shard: string; rows: number }) => void;
}

export async function countRowMoves(databases: ShardDatabases, config: ResolvedConfig, ring: HashRing, plan: SlotMovePlan, options: CountOptions = {}): Promise<TableMoves[]> {
  const batchSize = options.batchSize ?? 5000;
  const result: TableMoves[] = [];
  for (const [table, { shardKey }] of config.tables) {
    const moves: TableMoves = { table, rows: 0, movingRows: 0, misplacedRows: 0, flows: [] };
    const flows = new Map<string, RowFlow>();
    await Promise.all(
      ring.shardNames.map(async (shard) => {
        const db = databases.primary(shard);
        if (!(await db.schema.hasTable(table))) return;
        let last: unknown[] | null = null;
        let seen = 0;
        for (;;) {
          const groups: { key: unknown; rows: unknown }[] = await whereAfter(db(table), [{ column: shardKey }], last)
            .select({ key: shardKey })
            .count({ rows: '*' })
            .groupBy(shardKey)
            .orderBy(shardKey)
            .limit(batchSize);
          for (const group of groups) {
            const rows = Number(group.rows);
            const slot = ring.slotOf(group.key);
            seen += rows;
            if (ring.ownerOfSlot(slot) !== shard) moves.misplacedRows += rows;
            const to = plan.destinationOf(slot);
            if (to === undefined) continue;
            const id = `${shard}\u0000${to}`;
            const flow = flows.get(id) ?? { from: shard, to, rows: 0 };
            flow.rows += rows;
            flows.set(id, flow);
          }
          options.onProgress?.({ table, shard, rows: seen });
          if (groups.length < batchSize) break;
          last = [groups.at(-1)!.key];
        }
        moves.rows += seen;
      }),
    );
    moves.flows = [...flows.values()].sort((a, b) => b.rows - a.rows);
    moves.movingRows = moves.flows.reduce((sum, flow) => sum + flow.rows, 0);
    result.push(moves);
  }
  return result;
}
