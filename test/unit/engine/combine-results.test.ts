import { expect } from 'chai';
import { combineResults, combineWriteResults, emptyResult } from '../../../lib/engine/combine-results.js';

describe('combining results', () => {
  it('gives writes one shape whatever the shards and dialects: { rowCount } for inserts, a number for updates and deletes', () => {
    expect(combineWriteResults('insert', false, [{ rowCount: 2 }, { rowCount: 1 }])).to.deep.equal({ rowCount: 3 });
    expect(combineWriteResults('insert', false, [{ rowCount: 4 }])).to.deep.equal({ rowCount: 4 });
    expect(combineWriteResults('update', false, [2, 0, 5])).to.equal(7);
    expect(combineWriteResults('del', false, [3])).to.equal(3);
  });

  it('concatenates rows returned by `returning`', () => {
    expect(combineWriteResults('insert', true, [[{ id: 1 }], [], [{ id: 2 }]])).to.deep.equal([{ id: 1 }, { id: 2 }]);
    expect(combineResults([[{ id: 1 }], [{ id: 2 }]])).to.deep.equal([{ id: 1 }, { id: 2 }]);
  });

  it('answers a query that admits no key without touching a shard, in the same shapes', () => {
    expect(emptyResult('select', false)).to.deep.equal([]);
    expect(emptyResult('first', false)).to.equal(undefined);
    expect(emptyResult('del', false)).to.equal(0);
    expect(emptyResult('insert', false)).to.deep.equal({ rowCount: 0 });
    expect(emptyResult('update', true)).to.deep.equal([]);
  });
});
