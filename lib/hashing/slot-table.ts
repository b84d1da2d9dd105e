/**
 * The slot table: which shard owns each of the 2^20 hash slots.
 *
 * How it works. Every shard puts round(weight * POINTS_PER_WEIGHT) points on a 2^32 ring
 * (a classic consistent-hash ring with virtual nodes). Point v of a shard whose name hashes
 * to xxh64(name) = (hi << 32 | lo) sits at
 *
 *     position(v) = fmix32(fmix32((v + hi) mod 2^32) XOR lo)
 *
 * where fmix32 is MurmurHash3's 32-bit finaliser. Slot j starts at ring position j * 2^12 (2^32 / 2^20) and
 * belongs to the shard of the first point at or clockwise after that position (wrapping past
 * 2^32 - 1 to the lowest point). Two points on one position: the shard whose name sorts first
 * (names are ASCII, compared byte by byte) owns it.
 *
 * Why this design. A ring keeps consistent hashing's two promises by construction: adding a
 * shard only inserts its points, so a slot changes owner only to the new shard (zero keys move
 * between shards that exist before and after); removing one gives its arcs to the clockwise
 * neighbours; a weight change adds or removes points of that shard alone. A ring's load spread
 * shrinks as 1/sqrt(points per shard): 160 points (ketama, the npm `hashring` package) leaves
 * the busiest of 16 shards ~20% above the mean, 16384 points brings it to ~1-2%. So many points
 * are cheap only if lookups do not search them: the ring is evaluated once per slot into a
 * table, and a key costs one xxh64 plus one array read. Building the table is O(points + slots)
 * with a bucket pass instead of a sort (~50 ms for 64 shards). Rendezvous hashing over the
 * slots would balance as well but costs O(slots * shards) to build and a logarithm per pair
 * with weights; Maglev balances perfectly but moves keys between existing shards.
 */

import { SLOT_BITS, SLOT_COUNT } from './key-hasher.js';

export const POINTS_PER_WEIGHT = 16384;
export const MAX_SHARDS = 0xffff;

/** A shard as the ring sees it, listed in ring order (names ascending). */
export interface RingMember {
  /** xxh64 of the shard's name: low and high 32-bit halves, unsigned. */
  seedLow: number;
  seedHigh: number;
  points: number;
}

export function pointsForWeight(weight: number): number {
  return Math.max(1, Math.round(weight * POINTS_PER_WEIGHT));
}

/** MurmurHash3's fmix32: a bijective 32-bit avalanche mix. */
export function fmix32(input: number): number {
  let h = input;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function pointPosition(member: RingMember, pointIndex: number): number {
  return fmix32((fmix32((pointIndex + member.seedHigh) >>> 0) ^ member.seedLow) >>> 0);
}

/**
 * Owner index (into `members`) of every slot. `members` must be in ring order, so that on a
 * shared position the lower index wins.
 */
export function buildSlotTable(members: readonly RingMember[]): Uint16Array {
  if (members.length === 0) throw new RangeError('a ring needs at least one shard');
  if (members.length > MAX_SHARDS) throw new RangeError(`a ring holds at most ${MAX_SHARDS} shards`);
  const slotCount = SLOT_COUNT;
  const bucketShift = 32 - SLOT_BITS;

  // Lowest point of each slot's bucket, and its owner (-1: no point in this bucket).
  const lowestPosition = new Uint32Array(slotCount);
  const lowestOwner = new Int32Array(slotCount).fill(-1);
  members.forEach((member, owner) => {
    for (let v = 0; v < member.points; v++) {
      const position = pointPosition(member, v);
      const bucket = position >>> bucketShift;
      const current = lowestOwner[bucket]!;
      if (current === -1 || position < lowestPosition[bucket]! || (position === lowestPosition[bucket] && owner < current)) {
        lowestPosition[bucket] = position;
        lowestOwner[bucket] = owner;
      }
    }
  });

  // A slot's start is its bucket's first position, so its owner is the owner of its bucket's
  // lowest point, or, for an empty bucket, that of the next slot clockwise.
  const table = new Uint16Array(slotCount);
  let next = firstOwnerClockwise(lowestOwner);
  for (let slot = slotCount - 1; slot >= 0; slot--) {
    const owner = lowestOwner[slot]!;
    if (owner !== -1) next = owner;
    table[slot] = next;
  }
  return table;
}

/** Owner of the lowest point on the whole ring: where the last slots wrap to. */
function firstOwnerClockwise(lowestOwner: Int32Array): number {
  for (const owner of lowestOwner) if (owner !== -1) return owner;
  throw new RangeError('the ring has no points');
}
