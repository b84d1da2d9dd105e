/**
 * An independent, deliberately slow implementation of shardkit's routing spec (README,
 * "Hashing spec"), used to generate and check the published test vectors. It shares no code
 * with lib/: xxh64 is written out here with BigInt from the xxHash specification, and the ring
 * is searched point by point instead of through a slot table.
 */
const MASK64 = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & MASK64;
const mul = (a: bigint, b: bigint) => (a * b) & MASK64;
const add = (a: bigint, b: bigint) => (a + b) & MASK64;
const round = (acc: bigint, lane: bigint) => mul(rotl(add(acc, mul(lane, P2)), 31n), P1);
const merge = (acc: bigint, value: bigint) => add(mul(acc ^ round(0n, value), P1), P4);

function readU64(bytes: Uint8Array, at: number): bigint {
  let value = 0n;
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(bytes[at + i]!);
  return value;
}

function readU32(bytes: Uint8Array, at: number): bigint {
  return BigInt(bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + BigInt(bytes[at + 3]!) * 0x1000000n;
}

/** XXH64 of `bytes` with seed 0, per the xxHash specification. */
export function referenceXxh64(bytes: Uint8Array): bigint {
  const length = bytes.length;
  let offset = 0;
  let acc: bigint;
  if (length >= 32) {
    let v1 = add(P1, P2);
    let v2 = P2;
    let v3 = 0n;
    let v4 = (0n - P1) & MASK64;
    while (offset + 32 <= length) {
      v1 = round(v1, readU64(bytes, offset));
      v2 = round(v2, readU64(bytes, offset + 8));
      v3 = round(v3, readU64(bytes, offset + 16));
      v4 = round(v4, readU64(bytes, offset + 24));
      offset += 32;
    }
    acc = add(add(rotl(v1, 1n), rotl(v2, 7n)), add(rotl(v3, 12n), rotl(v4, 18n)));
    acc = merge(merge(merge(merge(acc, v1), v2), v3), v4);
  } else {
    acc = P5;
  }
  acc = add(acc, BigInt(length));
  while (offset + 8 <= length) {
    acc = add(mul(rotl(acc ^ round(0n, readU64(bytes, offset)), 27n), P1), P4);
    offset += 8;
  }
  if (offset + 4 <= length) {
    acc = add(mul(rotl(acc ^ mul(readU32(bytes, offset), P1), 23n), P2), P3);
    offset += 4;
  }
  while (offset < length) {
    acc = mul(rotl(acc ^ mul(BigInt(bytes[offset]!), P5), 11n), P1);
    offset += 1;
  }
  acc = mul(acc ^ (acc >> 33n), P2);
  acc = mul(acc ^ (acc >> 29n), P3);
  return acc ^ (acc >> 32n);
}

/** MurmurHash3 fmix32 on BigInt, to stay independent of lib/'s Math.imul version. */
function fmix32(value: bigint): bigint {
  const M32 = 0xffffffffn;
  let h = value & M32;
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M32;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M32;
  h ^= h >> 16n;
  return h;
}

export interface ReferenceShard {
  name: string;
  weight: number;
}

interface Point {
  position: bigint;
  shard: string;
}

/** The spec, literally: points on a 2^32 ring, slot j owned by the first point at or after j * 2^12. */
export class ReferenceRouter {
  private readonly points: Point[];

  constructor(shards: readonly ReferenceShard[]) {
    const encoder = new TextEncoder();
    this.points = shards.flatMap((shard) => {
      const seed = referenceXxh64(encoder.encode(shard.name));
      const low = seed & 0xffffffffn;
      const high = seed >> 32n;
      const count = Math.max(1, Math.round(shard.weight * 16384));
      return Array.from({ length: count }, (_, v) => ({
        position: fmix32(fmix32((BigInt(v) + high) & 0xffffffffn) ^ low),
        shard: shard.name,
      }));
    });
    this.points.sort((a, b) =>
      a.position !== b.position ? (a.position < b.position ? -1 : 1) : a.shard < b.shard ? -1 : a.shard > b.shard ? 1 : 0,
    );
  }

  slotOfBytes(bytes: Uint8Array): number {
    return Number(referenceXxh64(bytes) >> 44n);
  }

  ownerOfSlot(slot: number): string {
    const start = BigInt(slot) << 12n;
    let low = 0;
    let high = this.points.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.points[middle]!.position < start) low = middle + 1;
      else high = middle;
    }
    return (this.points[low] ?? this.points[0]!).shard;
  }
}
