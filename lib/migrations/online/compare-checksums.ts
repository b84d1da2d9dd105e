/**
 * Verify of rows copied as they are (a rebalance), compared on the servers. Per shard, the
 * distinct shard-key values are read in keyset chunks (one indexed column, not the rows); of each
 * chunk, the keys this pass checks (on the source pass those whose rows this shard gives away, on
 * the target pass those it receives) are grouped by the other shard holding their rows, and each
 * group's rows are checksummed on both shards (dialect/row-checksums.ts). Equal checksums: done,
 * without a row read into Node. Different: the group is halved and each half checksummed again,
 * down to groups of DIFFERENCE_LEAF keys, whose rows are read and compared one by one
 * (row-differences.ts); so a few differences read a few rows, and the outcome names exactly the
 * keys that differ, as the JavaScript path does. Both paths count the same rows: those of the keys
 * the shard owns on the pass's side.
 */
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { CopiedAsIs, MigrationTables, Side } from './migration-tables.js';
import { keyValuesFrom } from './key-values.js';
import { differingFromSource, orphans } from './row-differences.js';
import { copyReads } from './copy-reads.js';

/** Shard-key values whose rows are read into Node once their checksums differ. */
const DIFFERENCE_LEAF = 64;

export interface ChecksumOptions {
  /** Shard-key values per chunk. Default 10,000. */
  chunkSize?: number;
  signal?: AbortSignal;
}

/** Called once per chunk: rows compared on this shard, and the keys that differ. */
export type SettleChunk = (rowsCompared: number, differing: unknown[][]) => Promise<void>;

export async function compareChecksums(
  databases: ShardDatabases,
  tables: MigrationTables,
  copy: CopiedAsIs,
  side: Side,
  shard: string,
  options: ChecksumOptions,
  settle: SettleChunk,
): Promise<void> {
  const otherSide: Side = side === 'source' ? 'target' : 'source';
  const db = databases.primary(shard);
  const table = tables.tableOf(side);
  const checksums = databases.dialectOf(shard).rowChecksums;
  const chunkSize = options.chunkSize ?? 10_000;
  const listAfter = (last: unknown) => {
    const listing = keyValuesFrom(db, databases.dialectOf(shard).family, table, copy.shardKey, last === undefined ? null : { value: last, inclusive: false }, chunkSize);
    // Awaited in the loop; a prefetch abandoned by an abort or a failure must not go unhandled.
    listing.catch(() => undefined);
    return listing;
  };
  let next: Promise<unknown[]> | undefined = listAfter(undefined);
  while (next) {
    options.signal?.throwIfAborted();
    const found: unknown[] = await next;
    if (found.length === 0) return;
    // The next chunk's keys are listed while this one is compared.
    next = found.length < chunkSize ? undefined : listAfter(found.at(-1));
    const byOtherShard = new Map<string, unknown[]>();
    for (const value of found) {
      const owners = copy.ownersOf(value);
      const other = owners[otherSide];
      if (owners[side] !== shard || other === shard) continue;
      const keys = byOtherShard.get(other) ?? [];
      keys.push(value);
      byOtherShard.set(other, keys);
    }
    const differing: unknown[][] = [];
    /** Rows of `keys` on this shard, once their checksums are known (the halves of a differing group are counted there). */
    const compareGroup = async (other: string, keys: readonly unknown[]): Promise<number> => {
      const [here, there] = await Promise.all([
        checksums(db, table, copy.shardKey, keys),
        databases.dialectOf(other).rowChecksums(databases.primary(other), tables.tableOf(otherSide), copy.shardKey, keys),
      ]);
      if (here.rows === there.rows && here.sum === there.sum) return here.rows;
      if (keys.length > DIFFERENCE_LEAF) {
        const half = Math.ceil(keys.length / 2);
        const counts = await Promise.all([compareGroup(other, keys.slice(0, half)), compareGroup(other, keys.slice(half))]);
        return counts[0] + counts[1];
      }
      const rows = await db(table).whereIn(copy.shardKey, keys as never[]).options(copyReads(databases, tables, shard));
      differing.push(...(side === 'source' ? await differingFromSource(databases, tables, rows) : await orphans(databases, tables, rows)));
      return here.rows;
    };
    const counts = await Promise.all([...byOtherShard].map(([other, keys]) => compareGroup(other, keys)));
    await settle(
      counts.reduce((sum, rows) => sum + rows, 0),
      differing,
    );
  }
}
