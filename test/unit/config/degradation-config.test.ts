import { expect } from 'chai';
import { resolveConfig } from '../../../lib/config/resolve-config.js';
import { ConfigError } from '../../../lib/errors.js';

const base = () => ({ shards: [{ name: 'a', primary: { dialect: 'pglite', connection: {} } }], tables: { users: { shardKey: 'id' } } });

function issuesOf(degradation: unknown) {
  try {
    resolveConfig({ ...base(), degradation });
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error('expected the config to be rejected');
}

describe('degradation config', () => {
  it('defaults to three levels, each adding to the one below', () => {
    const { degradation } = resolveConfig(base());
    expect(degradation).to.deep.include({ enabled: false, windowMs: 10_000, evaluateEveryMs: 1000, minSamples: 20, recoverBelow: 0.7, minHoldMs: 5000 });
    expect(degradation.thresholds).to.deep.equal([
      { p99Ms: 1000, errorRate: 0.05 },
      { p99Ms: 2500, errorRate: 0.2 },
      { p99Ms: 5000, errorRate: 0.5 },
    ]);
    expect(degradation.levels).to.deep.equal([
      { shedBackground: false, pauseBackfill: false, replicaMaxLagMs: 0, serveStaleMs: 0, scatter: 'all' },
      { shedBackground: true, pauseBackfill: true, replicaMaxLagMs: 0, serveStaleMs: 0, scatter: 'all' },
      { shedBackground: true, pauseBackfill: true, replicaMaxLagMs: 30_000, serveStaleMs: 60_000, scatter: 'all' },
      { shedBackground: true, pauseBackfill: true, replicaMaxLagMs: 30_000, serveStaleMs: 60_000, scatter: 'critical-only' },
    ]);
  });

  it("takes a level's own settings over the defaults, and its levels above keep them", () => {
    const { levels } = resolveConfig({
      ...base(),
      degradation: { thresholds: [{ p99Ms: 50, errorRate: 0.1 }, { p99Ms: 80, errorRate: 0.1 }, { p99Ms: 90, errorRate: 0.2 }, { p99Ms: 200, errorRate: 0.3 }], effects: { 1: { shedBackground: false }, 2: { serveStaleMs: 5000 }, 4: { replicaMaxLagMs: 120_000 } } },
    }).degradation;
    expect(levels.map((level) => level.shedBackground)).to.deep.equal([false, false, false, false, false]);
    expect(levels.map((level) => level.pauseBackfill)).to.deep.equal([false, true, true, true, true]);
    expect(levels.map((level) => level.serveStaleMs)).to.deep.equal([0, 0, 5000, 5000, 5000]);
    expect(levels.map((level) => level.replicaMaxLagMs)).to.deep.equal([0, 0, 30_000, 30_000, 120_000]);
    expect(levels.map((level) => level.scatter)).to.deep.equal(['all', 'all', 'all', 'critical-only', 'critical-only']);
  });

  it('rejects what makes no sense, naming the field', () => {
    const paths = (degradation: unknown) => issuesOf(degradation).map((issue) => issue.path);
    expect(paths({ thresholds: [{ p99Ms: 500, errorRate: 0.1 }, { p99Ms: 100, errorRate: 0.2 }] })).to.deep.equal(['degradation.thresholds[1].p99Ms']);
    expect(paths({ thresholds: [{ p99Ms: 500, errorRate: 0.1 }], effects: { 2: { scatter: 'critical-only' } } })).to.deep.equal(['degradation.effects.2']);
    expect(paths({ windowMs: 1000, evaluateEveryMs: 2000 })).to.deep.equal(['degradation.evaluateEveryMs']);
    expect(paths({ thresholds: [] })).to.deep.equal(['degradation.thresholds']);
    expect(paths({ thresholds: [{ p99Ms: 100, errorRate: 1.5 }] })).to.deep.equal(['degradation.thresholds[0].errorRate']);
    expect(paths({ recoverBelow: 0 })).to.deep.equal(['degradation.recoverBelow']);
    expect(paths({ effects: { 1: { scatter: 'none' } } })).to.deep.equal(['degradation.effects.1.scatter']);
    expect(paths({ effects: { 1: { shedBackgrund: true } } })).to.deep.equal(['degradation.effects.1']);
    expect(paths({ effects: { zero: {} } })).to.deep.equal(['degradation.effects.zero']);
  });
});
