import { expect } from 'chai';
import { UsageError } from '../../../lib/cli/cli-context.js';
import { parseDuration, renderDegradation } from '../../../lib/cli/degrade-command.js';
import { resolveConfig } from '../../../lib/config/resolve-config.js';
import type { DegradationStatus } from '../../../lib/index.js';

const { levels } = resolveConfig({ shards: [{ name: 'a', primary: { dialect: 'pglite', connection: {} } }], tables: {} }).degradation;
const now = Date.UTC(2025, 0, 1, 12, 0, 0);
const status: DegradationStatus = {
  level: 2,
  source: 'override',
  reason: 'override: incident 42',
  since: now - 60_000,
  maxLevel: 3,
  effects: levels[2]!,
  signal: { enabled: true, level: 0, samples: 0, p99Ms: 0, errorRate: 0 },
  override: { level: 2, reason: 'incident 42: the orders replica is rebuilding', setBy: 'ops@app-7 (shardkit CLI)', setAt: now - 60_000, expiresAt: now + 9 * 60_000 },
};

describe('shardkit degrade', () => {
  it('reads durations with a unit, and refuses the rest', () => {
    expect(['500ms', '90s', '10m', '2h', '1d', '1.5s'].map(parseDuration)).to.deep.equal([500, 90_000, 600_000, 7_200_000, 86_400_000, 1500]);
    for (const text of ['10', '', 'ten minutes', '-5m', '0s']) expect(() => parseDuration(text), text).to.throw(UsageError);
  });

  it('shows the override and what each level does, within 80 columns', () => {
    const text = renderDegradation(status, levels, 80, now);
    for (const line of text.split('\n')) expect(line.length, line).to.be.at.most(80);
    const table = text.split('\n').slice(5, 11);
    expect(text).to.contain('set by an override\n  reason:  incident 42');
    expect(text).to.contain('ends:    in 9 min, 2025-01-01T12:09:00.000Z');
    expect(table[0]).to.match(/^level\s+background\s+backfills\s+replica lag\s+past cache TTL\s+scatter reads$/);
    expect(table[2]).to.match(/^0\s+served\s+run\s+caller's\s+no\s+all$/);
    expect(table[4]).to.match(/^2 \*\s+shed\s+paused\s+up to 30 s\s+up to 60 s\s+all$/);
    expect(table[5]).to.match(/^3\s+shed\s+paused\s+up to 30 s\s+up to 60 s\s+critical only$/);
    const signal = renderDegradation({ ...status, source: 'signal', level: 0, override: undefined } as DegradationStatus, levels, 80, now);
    expect(signal.split('\n').slice(0, 2)).to.deep.equal(['degradation: no override; each instance follows its own health signal', '  this process: level 0']);
  });
});
