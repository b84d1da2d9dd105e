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
 *
 * A table with a slot column lists no keys while its rows agree: the slot runs a shard gives away
 * are checksummed a group at a time on both sides, straight from the slot index; a group that
 * differs is halved by slots and checksummed again down to LEAF_SLOTS slots, whose keys are
 * listed (on both sides) and compared as above, both ways. The target's pass, which would
 * checksum the same runs, has nothing left to do.
 */
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { CopiedAsIs, MigrationTables, Side } from './migration-tables.js';
import { keyValuesFrom } from './key-values.js';
import type { ChecksumRows } from '../../dialect/row-checksums.js';
import { keysInSlots, runsPerStatement } from '../../dialect/slot-column.js';
import { groupRuns, type SlotRun, slotsIn } from '../../hashing/slot-runs.js';
import { mapWithConcurrency } from '../../util/map-with-concurrency.js';
import { canonical } from './row-identity.js';
import { differingFromSource, orphans } from './row-differences.js';
import { copyReads } from './copy-reads.js';

/** Shard-key values whose rows are read into Node once their checksums differ. */
const DIFFERENCE_LEAF = 64;
/**
 * Slots of one checksum on a table with a slot column: 1/16 of a table's rows at most (625k of
 * 10M: a few seconds, inside a statement's deadline). Fewer, larger checksums than at 16,384
 * compared ~456k rows/s against ~385k in the rebalance benchmark (a statement's fixed cost).
 */
const SLOTS_PER_CHECKSUM = 65536;
/** Checksums of one pass in flight at once on a table with a slot column. */
const GROUPS_AT_ONCE = 3;
/** Slots of a differing group whose keys are listed (on both sides): about keys x 1/4096 of a table's. */
const LEAF_SLOTS = 256;

export interface ChecksumOptions {
  /** Shard-key values per chunk of the key walk. Default 10,000. */
  chunkSize?: number;
  /**
   * Walk every shard-key value even where a slot column finds the moving rows: slower, and it
   * catches a row whose slot column is wrong (docs/rebalance.md, "Slot columns"). Default false.
   */
  walkKeys?: boolean;
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
  const family = databases.dialectOf(shard).family;
  /** Checksums of the same rows on this shard and on `other`. */
  const bothSides = (other: string, rows: ChecksumRows) =>
    Promise.all([checksums(db, table, rows), databases.dialectOf(other).rowChecksums(databases.primary(other), tables.tableOf(otherSide), rows)]);
  /**
   * Rows of `keys` on this shard, once their checksums are known; the keys that differ go into
   * `differing`. `bothWays`: the keys' rows on `other` are checked too, for rows that exist
   * there only (what the other side's own pass would find).
   */
  const compareKeys = async (other: string, keys: readonly unknown[], differing: unknown[][], bothWays = false): Promise<number> => {
    const [here, there] = await bothSides(other, { shardKey: copy.shardKey, keys });
    if (here.rows === there.rows && here.sum === there.sum) return here.rows;
    if (keys.length > DIFFERENCE_LEAF) {
      const half = Math.ceil(keys.length / 2);
      const counts = await Promise.all([compareKeys(other, keys.slice(0, half), differing, bothWays), compareKeys(other, keys.slice(half), differing, bothWays)]);
      return counts[0] + counts[1];
    }
    const rows = await db(table).whereIn(copy.shardKey, keys as never[]).options(copyReads(databases, tables, shard));
    differing.push(...(side === 'source' ? await differingFromSource(databases, tables, rows) : await orphans(databases, tables, rows)));
    if (bothWays) {
      const theirs = await databases.primary(other)(tables.tableOf(otherSide)).whereIn(copy.shardKey, keys as never[]).options(copyReads(databases, tables, other));
      differing.push(...(await orphans(databases, tables, theirs)));
    }
    return here.rows;
  };

  if (copy.slots && !options.walkKeys) {
    // One pass compares both sides of each run: the target's pass would checksum the same runs again.
    if (side === 'target') return;
    const { column } = copy.slots;
    const runsByOther = copy.slots.runsOf(side, shard);
    // Rows written past the kit get their slots first, or the runs would not show them.
    await Promise.all([shard, ...runsByOther.keys()].map((holder) => copy.slots!.fillMissing(holder)));
    const groups = [...runsByOther].flatMap(([other, runs]) => groupRuns(runs, SLOTS_PER_CHECKSUM, runsPerStatement(family)).map((group) => ({ other, group })));
    /** Rows of `runs` on this shard; a difference is halved by slots down to LEAF_SLOTS, whose keys (on either side) are compared both ways. */
    const compareRuns = async (other: string, runs: readonly SlotRun[], differing: unknown[][]): Promise<number> => {
      const [here, there] = await bothSides(other, { slotColumn: column, runs });
      if (here.rows === there.rows && here.sum === there.sum) return here.rows;
      const slots = slotsIn(runs);
      if (slots > LEAF_SLOTS) {
        const counts = await Promise.all(groupRuns(runs, Math.ceil(slots / 2), Number.POSITIVE_INFINITY).map((half) => compareRuns(other, half, differing)));
        return counts.reduce((sum, count) => sum + count, 0);
      }
      const listed = await Promise.all([
        keysInSlots(db, family, table, copy.shardKey, column, runs),
        keysInSlots(databases.primary(other), databases.dialectOf(other).family, tables.tableOf(otherSide), copy.shardKey, column, runs),
      ]);
      // A key listed by a slot written wrong past the kit, whose own hash places it elsewhere, is not part of this move.
      const keys = uniqueKeys(listed.flat()).filter((value) => {
        const owners = copy.ownersOf(value);
        return owners[side] === shard && owners[otherSide] === other;
      });
      return keys.length === 0 ? 0 : compareKeys(other, keys, differing, true);
    };
    const compared = await mapWithConcurrency(
      groups,
      GROUPS_AT_ONCE,
      async ({ other, group }) => {
        const differing: unknown[][] = [];
        const rows = await compareRuns(other, group, differing);
        await settle(rows, differing);
      },
      { stopOnError: true, signal: options.signal },
    );
    const failed = compared.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    options.signal?.throwIfAborted();
    return;
  }

  const chunkSize = options.chunkSize ?? 10_000;
  const listAfter = (last: unknown) => {
    const listing = keyValuesFrom(db, family, table, copy.shardKey, last === undefined ? null : { value: last, inclusive: false }, chunkSize);
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
    const counts = await Promise.all([...byOtherShard].map(([other, keys]) => compareKeys(other, keys, differing)));
    await settle(
      counts.reduce((sum, rows) => sum + rows, 0),
      differing,
    );
  }
}

/** Each key once (a key listed on both sides). */
function uniqueKeys(keys: readonly unknown[]): unknown[] {
  const seen = new Map<string, unknown>();
  for (const key of keys) seen.set(canonical(key), key);
  return [...seen.values()];
}
