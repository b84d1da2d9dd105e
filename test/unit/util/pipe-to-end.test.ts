import { Readable, Writable } from 'node:stream';
import { expect } from 'chai';
import { pipeToEnd } from '../../../lib/util/pipe-to-end.js';

/** A reader of `count` chunks that records how many were read. */
function source(count: number) {
  const state = { read: 0 };
  let next = 0;
  const reading = new Readable({
    read() {
      if (next === count) return this.push(null);
      next++;
      state.read++;
      this.push(Buffer.from(`chunk ${next}\n`));
    },
  });
  return { reading, state };
}

/** A writer that takes chunks, failing at chunk `failAt` (or at its end with `failAtEnd`). */
function sink(options: { failAt?: number; failAtEnd?: boolean } = {}) {
  const written: string[] = [];
  const writing = new Writable({
    write(chunk, _encoding, done) {
      written.push(String(chunk));
      done(written.length === options.failAt ? new Error('refused') : undefined);
    },
    final(done) {
      setTimeout(() => done(options.failAtEnd ? new Error('refused at the end') : undefined), 5);
    },
  });
  return { writing, written };
}

describe('pipeToEnd', () => {
  it('pipes everything and resolves once the writer finished', async () => {
    const { reading } = source(50);
    const { writing, written } = sink();
    await pipeToEnd(reading, writing);
    expect(written.length).to.equal(50);
  });

  it('reads the source to its end when the writer fails midway, then rejects with the writer error', async () => {
    const { reading, state } = source(200);
    const { writing } = sink({ failAt: 3 });
    const failure = await pipeToEnd(reading, writing).catch((error: Error) => error);
    expect(failure).to.be.instanceOf(Error).with.property('message', 'refused');
    expect(state.read, 'every chunk of the source was read').to.equal(200);
    expect(reading.readableEnded).to.equal(true);
  });

  it('rejects when the writer fails after the source ended', async () => {
    const { reading } = source(5);
    const { writing } = sink({ failAtEnd: true });
    const failure = await pipeToEnd(reading, writing).catch((error: Error) => error);
    expect(failure).to.be.instanceOf(Error).with.property('message', 'refused at the end');
  });

  it('destroys the writer with the error of a failing source', async () => {
    const reading = new Readable({
      read() {
        this.destroy(new Error('source broke'));
      },
    });
    const { writing } = sink();
    const failure = await pipeToEnd(reading, writing).catch((error: Error) => error);
    expect(failure).to.have.property('message', 'source broke');
    expect(writing.destroyed).to.equal(true);
  });
});
