import { expect } from 'chai';
import {
  addDecimals,
  compareDecimals,
  divideDecimal,
  formatDecimal,
  parseDecimal,
  postgresDivisionScale,
} from '../../../../lib/engine/merge/decimal.js';

const decimal = (text: string) => parseDecimal(text);

describe('exact decimals', () => {
  it('adds keeping the larger scale, beyond the range of doubles', () => {
    expect(formatDecimal(addDecimals(decimal('1.25'), decimal('2.5')))).to.equal('3.75');
    expect(formatDecimal(addDecimals(decimal('9223372036854775807'), decimal('1')))).to.equal('9223372036854775808');
    expect(formatDecimal(addDecimals(decimal('-0.10'), decimal('0.05')))).to.equal('-0.05');
  });

  it('compares numerically, not as text', () => {
    expect(compareDecimals(decimal('10'), decimal('9'))).to.equal(1);
    expect(compareDecimals(decimal('1.50'), decimal('1.5'))).to.equal(0);
    expect(compareDecimals(decimal('-2'), decimal('-10'))).to.equal(1);
  });

  it('divides rounding half away from zero', () => {
    expect(formatDecimal(divideDecimal(decimal('1'), 3n, 4))).to.equal('0.3333');
    expect(formatDecimal(divideDecimal(decimal('2'), 3n, 4))).to.equal('0.6667');
    expect(formatDecimal(divideDecimal(decimal('-5'), 2n, 0))).to.equal('-3');
  });

  // Expected scales are what PostgreSQL 15 prints for AVG: avg(x) over the values shown.
  const postgres: [string, bigint, number][] = [
    ['3', 2n, 16], // avg(1, 2) = 1.5000000000000000
    ['60', 3n, 16], // avg(10, 20, 30) = 20.0000000000000000
    ['1', 3n, 20], // avg(1, 0, 0) = 0.33333333333333333333
    ['3.75', 2n, 16], // avg(1.25, 2.50) = 1.8750000000000000
    ['100000', 2n, 12], // avg(50000, 50000) = 50000.000000000000
  ];
  for (const [sum, count, scale] of postgres) {
    it(`uses PostgreSQL's division scale: ${sum} / ${count} -> ${scale} digits`, () => {
      expect(postgresDivisionScale(decimal(sum), count)).to.equal(scale);
    });
  }
});
