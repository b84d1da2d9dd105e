import { expect } from 'chai';
import { HealthWindow } from '../../../lib/resilience/health-window.js';

describe('health window (p99 and error rate over a sliding window)', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('reports nothing without calls', () => {
    expect(new HealthWindow({ windowMs: 10_000 }, clock).figures()).to.deep.equal({ samples: 0, p99Ms: 0, errorRate: 0 });
  });

  it('finds the 99th percentile to within 5%, never above the slowest call', () => {
    const window = new HealthWindow({ windowMs: 10_000 }, clock);
    // 1..1000 ms, one call each: the 990th is 990 ms.
    for (let ms = 1; ms <= 1000; ms++) window.record(ms, false);
    const { samples, p99Ms, errorRate } = window.figures();
    expect(samples).to.equal(1000);
    expect(errorRate).to.equal(0);
    expect(p99Ms).to.be.within(990, 990 * 1.05);
    // A single call: its own time, not its bucket's bound.
    const single = new HealthWindow({ windowMs: 10_000 }, clock);
    single.record(123.4, false);
    expect(single.figures().p99Ms).to.equal(123.4);
  });

  it('is moved by the slowest 1%: 98 fast calls and 2 slow ones give a slow p99', () => {
    const window = new HealthWindow({ windowMs: 10_000 }, clock);
    for (let index = 0; index < 98; index++) window.record(5, false);
    window.record(2000, false);
    window.record(2000, false);
    expect(window.figures().p99Ms).to.be.within(1900, 2000);
    const fewer = new HealthWindow({ windowMs: 10_000 }, clock);
    for (let index = 0; index < 999; index++) fewer.record(5, false);
    fewer.record(2000, false);
    expect(fewer.figures().p99Ms).to.be.below(6);
  });

  it('counts errors as a share of calls', () => {
    const window = new HealthWindow({ windowMs: 10_000 }, clock);
    for (let index = 0; index < 30; index++) window.record(10, index % 10 === 0);
    expect(window.figures().errorRate).to.be.closeTo(0.1, 1e-9);
  });

  it('forgets calls once they slide out of the window, a slice at a time', () => {
    const window = new HealthWindow({ windowMs: 10_000 }, clock);
    for (let index = 0; index < 50; index++) window.record(3000, true);
    now += 5000;
    for (let index = 0; index < 50; index++) window.record(10, false);
    expect(window.figures()).to.include({ samples: 100, errorRate: 0.5 });
    // The slow calls are 10.5 s old: gone; the fast ones 5.5 s old: still in.
    now += 5500;
    const later = window.figures();
    expect(later).to.include({ samples: 50, errorRate: 0 });
    expect(later.p99Ms).to.equal(10);
    now += 10_000;
    expect(window.figures().samples).to.equal(0);
    // A slice reused after a lap starts empty.
    window.record(1, false);
    expect(window.figures()).to.include({ samples: 1, p99Ms: 1 });
  });

  it('holds a bounded amount whatever the rate (a million calls)', () => {
    const window = new HealthWindow({ windowMs: 1000 }, clock);
    for (let index = 0; index < 1_000_000; index++) {
      if (index % 1000 === 0) now += 1;
      window.record(index % 100 === 0 ? 500 : 2, false);
    }
    const { samples, p99Ms } = window.figures();
    // 1000 ms of the last 1000 ms: every call.
    expect(samples).to.be.within(950_000, 1_000_000);
    expect(p99Ms).to.be.within(2, 2.1);
  });
});
