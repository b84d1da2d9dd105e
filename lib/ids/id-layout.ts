/**
 * How a global ID packs its parts: milliseconds since 2026-01-01 (41 bits: until 2095), the
 * worker that made it (leased, see worker-lease.ts) and a sequence within the millisecond.
 *
 *   number  41 | 6 | 6    below 2^53, so JavaScript numbers and JSON keep it exactly:
 *                         64 workers, 64 IDs per millisecond each (64,000/s per process)
 *   bigint  41 | 10 | 12  below 2^63 (a BIGINT column): 1,024 workers, 4,096 per ms each
 *   string  as bigint, in decimal text (for JSON and drivers that return BIGINT as text)
 *
 * IDs of one format sort by time, then worker, then sequence. The two layouts never produce the
 * same value for times after 2026-01-26 (a wide ID's time alone then exceeds 2^53).
 */
export type IdFormat = 'number' | 'bigint' | 'string';

export const ID_EPOCH_MS = Date.UTC(2026, 0, 1);
const TIME_BITS = 41;

export interface IdLayout {
  format: IdFormat;
  workerBits: number;
  sequenceBits: number;
}

export function layoutOf(format: IdFormat): IdLayout {
  return format === 'number' ? { format, workerBits: 6, sequenceBits: 6 } : { format, workerBits: 10, sequenceBits: 12 };
}

/** The worker namespace of a layout: number and wide IDs lease their workers separately. */
export function workerSpace(layout: IdLayout): string {
  return layout.format === 'number' ? 'number' : 'wide';
}

export const maxWorkers = (layout: IdLayout): number => 2 ** layout.workerBits;
export const maxSequence = (layout: IdLayout): number => 2 ** layout.sequenceBits - 1;
/** The last millisecond a layout can express. */
export const lastTimestamp = (): number => ID_EPOCH_MS + 2 ** TIME_BITS - 1;

/** The ID of (timestamp, worker, sequence); timestamp in ms since 1970. */
export function composeId(layout: IdLayout, timestamp: number, worker: number, sequence: number): number | bigint | string {
  const time = timestamp - ID_EPOCH_MS;
  if (layout.format === 'number') {
    // Exact in a double: the whole is below 2^53.
    return (time * 2 ** layout.workerBits + worker) * 2 ** layout.sequenceBits + sequence;
  }
  const id = (((BigInt(time) << BigInt(layout.workerBits)) | BigInt(worker)) << BigInt(layout.sequenceBits)) | BigInt(sequence);
  return layout.format === 'bigint' ? id : id.toString();
}

/** The parts of an ID, for logs and tests. */
export function decomposeId(layout: IdLayout, id: number | bigint | string): { timestamp: number; worker: number; sequence: number } {
  const value = BigInt(id);
  const sequence = Number(value & BigInt(maxSequence(layout)));
  const worker = Number((value >> BigInt(layout.sequenceBits)) & BigInt(maxWorkers(layout) - 1));
  const time = Number(value >> BigInt(layout.sequenceBits + layout.workerBits));
  return { timestamp: time + ID_EPOCH_MS, worker, sequence };
}
