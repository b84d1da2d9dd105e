import { expect } from 'chai';
import { IdUnavailableError } from '../../../lib/errors.js';
import { IdGenerator, type WorkerLease } from '../../../lib/ids/id-generator.js';
import { decomposeId, ID_EPOCH_MS, layoutOf } from '../../../lib/ids/id-layout.js';

const T0 = Date.UTC(2026, 11, 1);

function generator(clock: () => number, lease: WorkerLease = { worker: 5, validUntil: T0 + 3_600_000, floor: 0 }, format: 'number' | 'bigint' | 'string' = 'number') {
  return new IdGenerator(layoutOf(format), { lease: () => lease, clock, maxAheadMs: 1000 });
}

describe('global ids', () => {
  it('packs time, worker and sequence below 2^53 by default, and in 64 bits for bigint and string', () => {
    const id = generator(() => T0).next() as number;
    expect(Number.isSafeInteger(id)).to.equal(true);
    expect(decomposeId(layoutOf('number'), id)).to.deep.equal({ timestamp: T0, worker: 5, sequence: 0 });
    const wide = generator(() => T0, undefined, 'bigint').next();
    expect(typeof wide).to.equal('bigint');
    expect(decomposeId(layoutOf('bigint'), wide)).to.deep.equal({ timestamp: T0, worker: 5, sequence: 0 });
    expect(generator(() => T0, undefined, 'string').next()).to.equal(String(wide));
    expect(T0).to.be.greaterThan(ID_EPOCH_MS);
  });

  it('never repeats or goes backwards when the clock stalls, goes back a little, or jumps', () => {
    // 300 ids in one millisecond (sequence runs out at 64), then the clock goes back 400 ms and forward again.
    const times = [...Array(300).fill(T0), ...Array(2000).fill(T0 - 400), ...Array(500).fill(T0 + 5_000)];
    let index = 0;
    const ids = generator(() => times[Math.min(index++, times.length - 1)]!);
    const made: number[] = [];
    for (let count = 0; count < times.length; count++) made.push(ids.next() as number);
    expect(new Set(made).size, 'no duplicates').to.equal(made.length);
    expect(made.every((id, position) => position === 0 || id > made[position - 1]!), 'strictly increasing').to.equal(true);
  });

  it('refuses, retryable, when ids would run more than maxAheadMs ahead of a clock that went back', () => {
    let now = T0;
    const ids = generator(() => now);
    ids.next();
    now = T0 - 5_000;
    const error = (() => {
      try {
        ids.next();
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).to.be.instanceOf(IdUnavailableError);
    expect(error).to.include({ retryable: true, code: 'ID_UNAVAILABLE' });
    now = T0 + 1;
    expect(decomposeId(layoutOf('number'), ids.next()).timestamp).to.equal(T0 + 1);
  });

  it("stays inside its lease: below validUntil, from the previous owner's floor on", () => {
    const lease = { worker: 1, validUntil: T0 + 10, floor: T0 + 500 };
    // The floor is ahead of the clock by more than maxAheadMs (1000)? No: 500 ms, allowed, and above validUntil: refused.
    expect(() => generator(() => T0, lease).next()).to.throw(IdUnavailableError, /lease ends/);
    const fresh = generator(() => T0, { worker: 1, validUntil: T0 + 60_000, floor: T0 + 500 });
    expect(decomposeId(layoutOf('number'), fresh.next()).timestamp, 'starts at the floor').to.equal(T0 + 500);
  });

  it('refuses without a lease', () => {
    const ids = new IdGenerator(layoutOf('number'), { lease: () => undefined, clock: () => T0 });
    expect(() => ids.next()).to.throw(IdUnavailableError, /no worker id/);
  });
});
