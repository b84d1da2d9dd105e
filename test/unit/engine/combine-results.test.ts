import { expect } from 'chai';
import { combineResults, emptyResult } from '../../../lib/engine/combine-results.js';
import type { QueryPlan } from '../../../lib/planner/query-plan.js';

const plan = (method: QueryPlan['method'], window?: QueryPlan['window']): QueryPlan => ({
  table: 't',
  method,
  route: { kind: 'all', shards: ['a', 'b', 'c'] },
  ...(window ? { window } : {}),
});

describe('combineResults', () => {
  it('concatenates rows in shard order', () => {
    expect(combineResults(plan('select'), [[{ id: 1 }], [], [{ id: 2 }, { id: 3 }]])).to.deep.equal([{ id: 1 }, { id: 2 }, { id: 3 }]);
  });

  it('cuts the LIMIT/OFFSET window after concatenating', () => {
    const parts = [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ];
    expect(combineResults(plan('pluck', { offset: 2, limit: 3 }), parts)).to.deep.equal([3, 4, 5]);
    expect(combineResults(plan('pluck', { offset: 7, limit: undefined }), parts)).to.deep.equal([8, 9]);
  });

  it('adds up affected-row counts and insert row counts', () => {
    expect(combineResults(plan('update'), [2, 0, 5])).to.equal(7);
    expect(combineResults(plan('insert'), [{ command: 'INSERT', rowCount: 2 }, { command: 'INSERT', rowCount: 1 }])).to.deep.equal({
      command: 'INSERT',
      rowCount: 3,
    });
  });

  it('takes the first row any shard found for first()', () => {
    expect(combineResults(plan('first'), [undefined, { id: 9 }, { id: 10 }])).to.deep.equal({ id: 9 });
    expect(combineResults(plan('first'), [undefined, undefined])).to.equal(undefined);
  });

  it('answers a query that admits no key without touching a shard', () => {
    expect(emptyResult('select')).to.deep.equal([]);
    expect(emptyResult('first')).to.equal(undefined);
    expect(emptyResult('del')).to.equal(0);
  });
});
