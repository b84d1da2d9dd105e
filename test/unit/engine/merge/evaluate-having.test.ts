import { expect } from 'chai';
import { havingFilter } from '../../../../lib/engine/merge/evaluate-having.js';
import type { HavingTerm } from '../../../../lib/planner/merge-spec.js';

const term = (partial: Partial<HavingTerm>): HavingTerm => ({ bool: 'and', not: false, column: 'n', operator: '>', value: 1, ...partial });

describe('HAVING after the merge', () => {
  it('compares exact aggregates given as text numerically', () => {
    const keep = havingFilter([term({ operator: '>', value: 9 })], () => 'exact');
    expect(keep({ n: '10' })).to.equal(true);
    expect(keep({ n: '9' })).to.equal(false);
  });

  it('treats comparisons with NULL as unknown, also under NOT', () => {
    expect(havingFilter([term({ operator: '=', value: 1 })], () => 'exact')({ n: null })).to.equal(false);
    expect(havingFilter([term({ operator: '=', value: 1, not: true })], () => 'exact')({ n: null })).to.equal(false);
    expect(havingFilter([term({ operator: 'null', value: null })], () => 'exact')({ n: null })).to.equal(true);
  });

  it('binds AND tighter than OR', () => {
    // n > 5 AND n < 8 OR n = 100
    const keep = havingFilter(
      [term({ operator: '>', value: 5 }), term({ operator: '<', value: 8 }), term({ bool: 'or', operator: '=', value: 100 })],
      () => 'exact',
    );
    expect([6, 9, 100, 3].map((n) => keep({ n }))).to.deep.equal([true, false, true, false]);
  });

  it('evaluates IN and BETWEEN', () => {
    expect(havingFilter([term({ operator: 'in', value: [1, 3] })], () => 'exact')({ n: 3 })).to.equal(true);
    expect(havingFilter([term({ operator: 'between', value: [2, 4] })], () => 'exact')({ n: '4' })).to.equal(true);
    expect(havingFilter([term({ operator: 'between', value: [2, 4] })], () => 'exact')({ n: 5 })).to.equal(false);
  });
});
