/**
 * Writes test/vectors/routing-vectors.json from the reference implementation of the hashing
 * spec (test/support/reference-router.ts), not from lib/, so the vectors check the library.
 * Run: npx tsx scripts/generate-routing-vectors.ts
 */
import { writeFile } from 'node:fs/promises';
import { ReferenceRouter, type ReferenceShard, referenceXxh64 } from '../test/support/reference-router.js';

const topology: ReferenceShard[] = [
  { name: 'alpha', weight: 1 },
  { name: 'bravo', weight: 1 },
  { name: 'charlie', weight: 2 },
  { name: 'delta', weight: 0.5 },
  { name: 'echo', weight: 1 },
];

type Input = { type: 'string' | 'integer'; value: string } | { type: 'bytes'; hex: string };

const inputs: Input[] = [
  ...['', 'a', 'abc', 'user:1', 'user:2', 'alice@example.com', 'Ünïcödé ключ 键', '🙂', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(100)].map(
    (value) => ({ type: 'string' as const, value }),
  ),
  ...['0', '1', '-1', '42', '1000000', '9007199254740991', '-9007199254740991', '9223372036854775807', '18446744073709551616'].map(
    (value) => ({ type: 'integer' as const, value }),
  ),
  ...['', '00', 'deadbeef', '0123456789abcdef0123456789abcdef01'].map((hex) => ({ type: 'bytes' as const, hex })),
];

const router = new ReferenceRouter(topology);
const encoder = new TextEncoder();
const vectors = inputs.map((input) => {
  const bytes = input.type === 'bytes' ? Buffer.from(input.hex, 'hex') : encoder.encode(input.value);
  const slot = router.slotOfBytes(bytes);
  return {
    input,
    bytesHex: Buffer.from(bytes).toString('hex'),
    xxh64: referenceXxh64(bytes).toString(16).padStart(16, '0'),
    slot,
    shard: router.ownerOfSlot(slot),
  };
});

const document = {
  spec: 'shardkit routing v1: slot = top 20 bits of xxh64(seed 0) of the key bytes; see README "Hashing spec"',
  topology,
  vectors,
};
await writeFile(new URL('../test/vectors/routing-vectors.json', import.meta.url), `${JSON.stringify(document, null, 2)}\n`);
console.log(`wrote ${vectors.length} vectors`);
