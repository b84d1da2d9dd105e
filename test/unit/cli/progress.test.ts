import { expect } from 'chai';
import { formatSeconds, progressLine, type ProgressState } from '../../../lib/cli/progress.js';

const state = (overrides: Partial<ProgressState>): ProgressState => ({
  label: 'backfill users_v2',
  note: '',
  done: false,
  first: 0,
  value: 0,
  total: 1000,
  unit: 'rows',
  width: 80,
  seconds: 1,
  ...overrides,
});

describe('progress lines', () => {
  it('fill the bar only at 100%, like the percentage', () => {
    expect(progressLine(state({ value: 999, total: 1000 }))).to.match(/\[#+-\]/);
    expect(progressLine(state({ value: 1000, total: 1000, done: true }))).to.match(/\[#+\]/);
  });

  it('write minutes and seconds without a 60th second', () => {
    expect(formatSeconds(119.5)).to.equal('2m0s');
    expect(formatSeconds(59.2)).to.equal('1m0s');
    expect(formatSeconds(3725)).to.equal('1h2m');
  });

  it('say 100% only when the work is done, never from rounding', () => {
    expect(progressLine(state({ value: 999, total: 1000 }))).to.include(' 99% 999/1,000 rows');
    expect(progressLine(state({ value: 1000, total: 1000, done: true }))).to.include(' 100% 1,000/1,000 rows');
  });

  it('count the rate of this run only: a resumed backfill does not claim its checkpoint', () => {
    // 50,000 rows copied before a kill, 600 since, in one second.
    expect(progressLine(state({ first: 50_000, value: 50_600, total: 60_000 }))).to.include('600 rows/s');
  });

  it('keep count, rate and ETA visible at 80 columns, shortening the label and the bar first', () => {
    const line = progressLine(state({ label: 'moving rows of a table with a very long descriptive name', value: 123_456, total: 1_000_000, seconds: 10 }));
    expect(line.length).to.be.at.most(79);
    // 876,544 rows left at this run's 12,346 rows/s: the ETA follows the rate shown.
    expect(line).to.include('12% 123,456/1,000,000 rows 12,346 rows/s ETA 1m11s');
    expect(progressLine(state({ width: 140 })).length).to.be.at.most(139);
  });
});
