/**
 * Key -> shard placement: slot = top 20 bits of xxh64(normalised key), owner = slot table
 * (see slot-table.ts for how the table is built and why; shard-key.ts for normalisation).
 * A ring is immutable; a topology change builds a new one, so the two can be compared.
 */
import { ConfigError, type ConfigIssue } from '../errors.js';
import { type KeyHasher, loadKeyHasher, SLOT_COUNT } from './key-hasher.js';
import { normalizeShardKey } from './shard-key.js';
import { buildSlotTable, MAX_SHARDS, pointsForWeight, type RingMember } from './slot-table.js';

export interface RingShard {
  name: string;
  weight: number;
}

/** Shard names: ASCII, so that "sorts first" means the same in every language. */
export const SHARD_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** Keeps the ring's points (and its build time) bounded: 1024 * 16384 = 16.7M points. */
export const MAX_TOTAL_WEIGHT = 1024;
/** 164 ring points: below, a shard's share of the keys strays far from its weight. */
export const MIN_WEIGHT = 0.01;

export class HashRing {
  /** Shard names in ring order (ascending), the index space of the slot table. */
  readonly shardNames: readonly string[];
  private readonly table: Uint16Array;
  private readonly hasher: KeyHasher;
  private counted: ReadonlyMap<string, number> | undefined;

  private constructor(hasher: KeyHasher, shards: readonly RingShard[], table: Uint16Array) {
    this.hasher = hasher;
    this.shardNames = shards.map((shard) => shard.name);
    this.table = table;
  }

  static async create(shards: readonly RingShard[]): Promise<HashRing> {
    const issues = ringShardIssues(shards);
    if (issues.length > 0) throw new ConfigError(issues);
    const hasher = await loadKeyHasher();
    const ordered = [...shards].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const members: RingMember[] = ordered.map((shard) => {
      const [seedLow, seedHigh] = hasher.hash64Halves(shard.name);
      return { seedLow, seedHigh, points: pointsForWeight(shard.weight) };
    });
    return new HashRing(hasher, ordered, buildSlotTable(members));
  }

  /** Name of the shard that owns `key`; throws InvalidShardKeyError for a value that is not a key. */
  shardFor(key: unknown): string {
    return this.shardNames[this.table[this.slotOf(key)]!]!;
  }

  slotOf(key: unknown): number {
    if (typeof key === 'string') return this.hasher.slotOfString(key);
    const normalised = normalizeShardKey(key);
    return typeof normalised === 'string' ? this.hasher.slotOfString(normalised) : this.hasher.slotOfBytes(normalised);
  }

  ownerOfSlot(slot: number): string {
    const owner = this.table[slot];
    if (owner === undefined || !Number.isInteger(slot)) throw new RangeError(`slot ${slot} is outside 0..${SLOT_COUNT - 1}`);
    return this.shardNames[owner]!;
  }

  /** How many slots each shard owns, in ring order (counted once: the ring never changes). */
  slotCounts(): ReadonlyMap<string, number> {
    if (!this.counted) {
      const counts = new Uint32Array(this.shardNames.length);
      for (const owner of this.table) counts[owner]!++;
      this.counted = new Map(this.shardNames.map((name, index) => [name, counts[index]!]));
    }
    return this.counted;
  }
}

/** What is wrong with a list of shards as a ring: names, duplicates, weights. */
export function ringShardIssues(shards: readonly RingShard[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (shards.length === 0) issues.push({ path: 'shards', message: 'at least one shard is required' });
  if (shards.length > MAX_SHARDS) issues.push({ path: 'shards', message: `at most ${MAX_SHARDS} shards are supported` });
  const seen = new Set<string>();
  let totalWeight = 0;
  shards.forEach((shard, index) => {
    if (!SHARD_NAME_PATTERN.test(shard.name)) {
      issues.push({ path: `shards[${index}].name`, message: `"${shard.name}" must match ${SHARD_NAME_PATTERN}` });
    }
    if (seen.has(shard.name)) issues.push({ path: `shards[${index}].name`, message: `duplicate shard name "${shard.name}"` });
    seen.add(shard.name);
    if (!(Number.isFinite(shard.weight) && shard.weight >= MIN_WEIGHT)) {
      issues.push({ path: `shards[${index}].weight`, message: `must be a number >= ${MIN_WEIGHT}, got ${shard.weight}` });
    } else {
      totalWeight += shard.weight;
    }
  });
  if (totalWeight > MAX_TOTAL_WEIGHT) {
    issues.push({
      path: 'shards',
      message: `weights add up to ${totalWeight}, more than ${MAX_TOTAL_WEIGHT}; weights are relative (1 = a standard shard)`,
    });
  }
  return issues;
}
