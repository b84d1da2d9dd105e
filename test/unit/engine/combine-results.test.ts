import { expect } from 'chai';
import { combineResults, emptyResult } from '../../../lib/engine/combine-results.js';

describe('combineResults (multi-shard writes)', () => {
  it('adds up affected-row counts and insert row counts', () => {
    expect(combineResults([2, 0, 5])).to.equal(7);
    expect(combineResults([{ command: 'INSERT', rowCount: 2 }, { command: 'INSERT', rowCount: 1 }])).to.deep.equal({
      command: 'INSERT',
      rowCount: 3,
    });
  });

  it('concatenates rows returned by `returning`', () => {
    expect(combineResults([[{ id: 1 }], [], [{ id: 2 }]])).to.deep.equal([{ id: 1 }, { id: 2 }]);
  });

  it('answers a query that admits no key without touching a shard', () => {
    expect(emptyResult('select')).to.deep.equal([]);
    expect(emptyResult('first')).to.equal(undefined);
    expect(emptyResult('del')).to.equal(0);
  });
});
