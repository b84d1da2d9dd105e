import { expect } from 'chai';
import { AdaptiveLimit } from '../../../lib/resilience/adaptive-limit.js';

describe('adaptive concurrency limit', () => {
  let now = 0;
  const limiter = () => new AdaptiveLimit({ min: 1, max: 20, windowMs: 100, minSamples: 5, tolerance: 2 }, () => now);
  /** One window of `count` calls of `ms` each, with `inFlight` admitted. */
  const window = (limit: AdaptiveLimit, ms: number, inFlight: number, count = 10) => {
    for (let call = 0; call < count; call++) {
      now += 100 / count;
      limit.observe(ms, inFlight);
    }
  };

  it('starts at its maximum and stays there while latency stays near its floor', () => {
    const limit = limiter();
    expect(limit.current).to.equal(20);
    for (let round = 0; round < 5; round++) window(limit, 5 + (round % 2), 20);
    expect(limit.current).to.equal(20);
    expect(limit.floor).to.be.within(5, 6);
  });

  it('shrinks when latency rises past tolerance x floor, by at most a quarter a window, down to its minimum', () => {
    const limit = limiter();
    window(limit, 5, 20);
    const seen: number[] = [];
    for (let round = 0; round < 12; round++) {
      window(limit, 50, limit.current);
      seen.push(limit.current);
    }
    expect(seen[0]).to.equal(15);
    for (let index = 1; index < seen.length; index++) expect(seen[index]!).to.be.at.least(Math.floor(seen[index - 1]! * 0.75));
    expect(seen.at(-1)).to.equal(1);
  });

  it('grows back once latency falls, but not while the node is idle', () => {
    const limit = limiter();
    window(limit, 5, 20);
    for (let round = 0; round < 6; round++) window(limit, 50, limit.current);
    const low = limit.current;
    expect(low).to.be.below(6);
    // Light traffic at the floor's latency: nothing shows the node could take more.
    window(limit, 5, 0);
    expect(limit.current).to.equal(low);
    const seen: number[] = [];
    for (let round = 0; round < 20; round++) {
      window(limit, 5, limit.current);
      seen.push(limit.current);
    }
    expect(seen[0]).to.be.greaterThan(low);
    expect(seen.at(-1)).to.equal(20);
  });

  it('needs both the window time and the sample count before it moves', () => {
    const limit = limiter();
    window(limit, 5, 20);
    for (let call = 0; call < 4; call++) {
      now += 1000;
      limit.observe(500, 20);
    }
    expect(limit.current).to.equal(20);
    limit.observe(500, 20);
    expect(limit.current).to.equal(15);
  });
});
