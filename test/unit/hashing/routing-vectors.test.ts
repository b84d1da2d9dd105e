import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import xxhash from 'xxhash-wasm';
import { HashRing } from '../../../lib/hashing/hash-ring.js';
import { SLOT_COUNT } from '../../../lib/hashing/key-hasher.js';
import { ReferenceRouter, type ReferenceShard, referenceXxh64 } from '../../support/reference-router.js';

interface Vector {
  input: { type: 'string' | 'integer'; value: string } | { type: 'bytes'; hex: string };
  bytesHex: string;
  xxh64: string;
  slot: number;
  shard: string;
}

const published = JSON.parse(readFileSync(new URL('../../vectors/routing-vectors.json', import.meta.url), 'utf8')) as {
  topology: ReferenceShard[];
  vectors: Vector[];
};

/** Every JavaScript value the spec says encodes to the vector's bytes. */
function keysOf(input: Vector['input']): unknown[] {
  if (input.type === 'bytes') return [Buffer.from(input.hex, 'hex'), new Uint8Array(Buffer.from(input.hex, 'hex'))];
  if (input.type === 'string') return [input.value];
  const asBigInt = BigInt(input.value);
  const asNumber = Number(input.value);
  return Number.isSafeInteger(asNumber) ? [asBigInt, asNumber, input.value] : [asBigInt, input.value];
}

describe('routing test vectors (test/vectors/routing-vectors.json)', () => {
  it('match the published XXH64 values of the xxHash specification', () => {
    const encoder = new TextEncoder();
    expect(referenceXxh64(new Uint8Array()).toString(16)).to.equal('ef46db3751d8e999');
    expect(referenceXxh64(encoder.encode('abc')).toString(16)).to.equal('44bc2cf5ad770999');
  });

  it('agree with the reference implementation they were generated from', () => {
    const router = new ReferenceRouter(published.topology);
    for (const vector of published.vectors) {
      const bytes = Buffer.from(vector.bytesHex, 'hex');
      expect(referenceXxh64(bytes).toString(16).padStart(16, '0')).to.equal(vector.xxh64);
      expect(router.slotOfBytes(bytes)).to.equal(vector.slot);
      expect(router.ownerOfSlot(vector.slot)).to.equal(vector.shard);
    }
  });

  it('are reproduced by the library for every accepted form of each key', async () => {
    const ring = await HashRing.create(published.topology);
    for (const vector of published.vectors) {
      for (const key of keysOf(vector.input)) {
        expect(ring.slotOf(key), `slot of ${String(key)}`).to.equal(vector.slot);
        expect(ring.shardFor(key), `shard of ${String(key)}`).to.equal(vector.shard);
      }
    }
  });

  it('xxhash-wasm agrees with the reference XXH64 on inputs of every length class', async () => {
    const { h64Raw } = await xxhash();
    for (let length = 0; length <= 100; length++) {
      const bytes = Uint8Array.from({ length }, (_, index) => (index * 131 + length * 7) & 0xff);
      expect(h64Raw(bytes)).to.equal(referenceXxh64(bytes));
    }
  });

  it('the slot table agrees with a point-by-point ring search on sampled slots', async () => {
    const topology = [
      { name: 'node-a', weight: 1 },
      { name: 'node-b', weight: 3 },
      { name: 'node-c', weight: 0.25 },
    ];
    const reference = new ReferenceRouter(topology);
    const ring = await HashRing.create(topology);
    for (let slot = 0; slot < SLOT_COUNT; slot += 97) {
      expect(ring.ownerOfSlot(slot), `slot ${slot}`).to.equal(reference.ownerOfSlot(slot));
    }
    expect(ring.ownerOfSlot(SLOT_COUNT - 1)).to.equal(reference.ownerOfSlot(SLOT_COUNT - 1));
  });
});
