import { expect } from 'chai';
import { canonical, sameRow } from '../../../lib/migrations/online/row-identity.js';

describe('row identity across drivers', () => {
  it('gives one form to every spelling of the same number', () => {
    const spellings: unknown[][] = [
      [5, 5n, '5', '5.0', '5.00', '+5', '005'],
      [0, 0n, '0', '-0', '0.000', -0],
      [-12, -12n, '-12', '-12.0'],
      [1.5, '1.50', '1.5'],
      ['9223372036854775807', 9223372036854775807n],
    ];
    for (const same of spellings) expect(new Set(same.map(canonical)), JSON.stringify(same, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))).to.have.length(1);
    const distinct = [1, 2, '12', '1.2', '-1', 10, 100, '9223372036854775807', '9223372036854775806'].map(canonical);
    expect(new Set(distinct)).to.have.length(distinct.length);
  });

  it('tells numbers from other text, and compares dates by instant', () => {
    expect(canonical('5')).to.not.equal(canonical('five'));
    expect(canonical('')).to.not.equal(canonical(null));
    expect(canonical(new Date('2026-01-01T00:00:00Z'))).to.equal(canonical(new Date('2026-01-01T01:00:00+01:00')));
    expect(sameRow({ id: '7', name: 'Ada' }, { id: 7n, name: 'Ada', extra: 1 })).to.equal(true);
    expect(sameRow({ id: '7', name: 'Ada' }, { id: 7, name: 'ada' })).to.equal(false);
  });
});
