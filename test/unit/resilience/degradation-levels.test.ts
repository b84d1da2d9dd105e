import { expect } from 'chai';
import { dueLevel, LevelController } from '../../../lib/resilience/degradation-levels.js';

const thresholds = [
  { p99Ms: 100, errorRate: 0.05 },
  { p99Ms: 250, errorRate: 0.2 },
  { p99Ms: 500, errorRate: 0.5 },
];
const rules = { thresholds, recoverBelow: 0.7, minHoldMs: 1000, minSamples: 10 };
const figures = (p99Ms: number, errorRate = 0, samples = 100) => ({ samples, p99Ms, errorRate });

describe('degradation levels (hysteresis over the health signal)', () => {
  it('names the highest level whose threshold either figure crosses', () => {
    const cases: [number, number, number][] = [
      [50, 0, 0],
      [100, 0, 0],
      [101, 0, 1],
      [300, 0, 2],
      [501, 0, 3],
      [10, 0.06, 1],
      [10, 0.21, 2],
      [10, 0.6, 3],
      [300, 0.6, 3],
    ];
    for (const [p99Ms, errorRate, level] of cases) expect(dueLevel(thresholds, figures(p99Ms, errorRate)), `${p99Ms} ms, ${errorRate}`).to.equal(level);
  });

  it('rises at once by as many levels as the figures say', () => {
    const controller = new LevelController(rules, 0);
    expect(controller.judge(figures(600), 10)).to.deep.include({ from: 0, to: 3 });
    expect(controller.level).to.equal(3);
  });

  it('rises again while held, but falls one level at a time after minHoldMs, and only below recoverBelow x threshold', () => {
    const controller = new LevelController(rules, 0);
    controller.judge(figures(150), 0);
    expect(controller.level).to.equal(1);
    // Within the hold: a worse signal still raises.
    expect(controller.judge(figures(300), 500)?.to).to.equal(2);
    // Healthy, but level 2 was entered 400 ms ago: held.
    expect(controller.judge(figures(1), 900)).to.equal(undefined);
    expect(controller.earliestStepDown()).to.equal(1500);
    expect(controller.judge(figures(1), 1500)).to.deep.include({ from: 2, to: 1 });
    // One step per hold: not at once to 0.
    expect(controller.judge(figures(1), 1600)).to.equal(undefined);
    expect(controller.judge(figures(1), 2500)).to.deep.include({ from: 1, to: 0 });
  });

  it('does not flap around a threshold: between 0.7x and 1x it stays', () => {
    const controller = new LevelController(rules, 0);
    controller.judge(figures(110), 0);
    for (let at = 2000; at < 20_000; at += 1000) {
      // 75..99 ms: under level 1's threshold, not under 70 ms.
      expect(controller.judge(figures(75 + (at % 25)), at)).to.equal(undefined);
    }
    expect(controller.level).to.equal(1);
    // The error rate must recover too.
    expect(controller.judge(figures(50, 0.04), 21_000)).to.equal(undefined);
    expect(controller.judge(figures(50, 0.03), 22_000)?.to).to.equal(0);
  });

  it('judges a window with fewer than minSamples calls healthy: no rise, and a step down after the hold', () => {
    const controller = new LevelController(rules, 0);
    expect(controller.judge(figures(5000, 1, 9), 0)).to.equal(undefined);
    controller.judge(figures(300), 100);
    expect(controller.level).to.equal(2);
    expect(controller.judge(figures(5000, 1, 3), 1200)).to.deep.include({ from: 2, to: 1 });
  });
});
