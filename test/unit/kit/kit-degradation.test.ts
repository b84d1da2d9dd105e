import { expect } from 'chai';
import { resolveConfig } from '../../../lib/config/resolve-config.js';
import { DegradedError } from '../../../lib/errors.js';
import { overloadResponse } from '../../../lib/resilience/retry-after.js';
import type { DegradationOverride, DegradationOverrides } from '../../../lib/kit/degradation-override.js';
import { KitDegradation } from '../../../lib/kit/kit-degradation.js';
import type { DegradationEvent } from '../../../lib/observability/state-events.js';

/** The control table, in memory: what another instance sets, this one reads at its next poll. */
class MemoryOverrides {
  stored: DegradationOverride | undefined;
  async read() {
    return this.stored;
  }
  async set(override: DegradationOverride) {
    this.stored = override;
  }
  async clear() {
    this.stored = undefined;
  }
}

const replicaRead = { from: 'replica' as const, maxLagMs: 100, fallback: 'primary' as const, waitMs: 0 };

describe('kit degradation (signal, override, effects)', () => {
  let now = 0;
  let events: DegradationEvent[];
  const open = (store = new MemoryOverrides()) => {
    const config = resolveConfig({
      shards: [{ name: 'a', primary: { dialect: 'pglite', connection: {} } }],
      tables: {},
      degradation: { windowMs: 1000, minSamples: 5, minHoldMs: 500, thresholds: [{ p99Ms: 100, errorRate: 0.1 }, { p99Ms: 200, errorRate: 0.3 }, { p99Ms: 400, errorRate: 0.6 }] },
    }).degradation;
    const degradation = new KitDegradation({ config, overrides: store as unknown as DegradationOverrides, pollIntervalMs: 100, onChange: (event) => events.push(event), clock: () => now });
    return { degradation, store };
  };
  const load = (degradation: KitDegradation, ms: number, calls = 20, code?: string) => {
    for (let index = 0; index < calls; index++) degradation.observe(ms, code);
  };
  beforeEach(() => {
    now = 1_000_000;
    events = [];
  });

  it('follows the signal up and down, with one event per change and its figures', () => {
    const { degradation } = open();
    load(degradation, 250);
    degradation.evaluate();
    expect(degradation.level).to.equal(2);
    expect(events).to.have.length(1);
    expect(events[0]).to.deep.include({ from: 0, to: 2, source: 'signal', p99Ms: 250, errorRate: 0 });
    expect(events[0]!.reason).to.match(/p99 250 ms.*above level 2's threshold/);
    // The load ends: the slow calls slide out, then a level per hold.
    now += 1100;
    load(degradation, 5);
    degradation.evaluate();
    expect(degradation.level).to.equal(1);
    now += 100;
    degradation.evaluate();
    expect(degradation.level).to.equal(1);
    now += 500;
    degradation.evaluate();
    expect(events.map((event) => [event.from, event.to])).to.deep.equal([[0, 2], [2, 1], [1, 0]]);
  });

  it('counts overload errors, not its own refusals nor callers giving up, nor other errors', () => {
    const { degradation } = open();
    load(degradation, 1, 10);
    load(degradation, 1, 10, 'DEGRADED');
    load(degradation, 1, 10, 'QUERY_CANCELLED');
    load(degradation, 1, 10, 'QUERY_FAILED');
    degradation.evaluate();
    expect(degradation.status().signal).to.include({ samples: 20, errorRate: 0 });
    load(degradation, 1, 20, 'SHARD_OVERLOADED');
    degradation.evaluate();
    expect(degradation.status().signal.errorRate).to.equal(0.5);
    expect(degradation.level).to.equal(2);
  });

  it('lets an override replace the signal, 0 included, until cleared or expired; another instance follows at its poll', async () => {
    const { degradation, store } = open();
    const other = open(store).degradation;
    other.start();
    try {
      load(degradation, 500);
      degradation.evaluate();
      expect(degradation.level).to.equal(3);
      await degradation.set(0, { reason: 'false alarm', setBy: 'ops' });
      expect(degradation.status()).to.deep.include({ level: 0, source: 'override' });
      expect(events.at(-1)).to.deep.include({ from: 3, to: 0, source: 'override', reason: 'override: false alarm (ops)' });
      // The signal moves underneath, silently.
      degradation.evaluate();
      expect(degradation.level).to.equal(0);
      await degradation.clear();
      expect(degradation.status()).to.deep.include({ level: 3, source: 'signal' });
      // An override that expires by itself; the other instance polls the store.
      await degradation.set(2, { reason: 'incident', forMs: 1000 });
      expect(other.level).to.equal(0);
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(other.status()).to.deep.include({ level: 2, source: 'override' });
      expect(other.status().override).to.deep.include({ level: 2, reason: 'incident', expiresAt: now + 1000 });
      now += 1000;
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(other.status()).to.deep.include({ level: 0, source: 'signal' });
      expect(other.status().reason).to.match(/^override expired/);
    } finally {
      await other.stop();
    }
  });

  it('refuses background work and scatters as configured, never for critical callers; relaxes replica bounds; pauses backfills', async () => {
    const { degradation } = open();
    const where = { shard: 'a', node: 'a-primary' };
    expect(degradation.refuseAtNode('background', 'query', where)).to.equal(undefined);
    expect(degradation.throttleReason()).to.equal(undefined);
    await degradation.set(1);
    const shed = degradation.refuseAtNode('background', 'transaction', where);
    expect(shed).to.be.instanceOf(DegradedError);
    expect(shed).to.deep.include({ code: 'DEGRADED', level: 1, refused: 'background', shard: 'a', node: 'a-primary', retryable: true });
    expect(shed!.retryAfterMs).to.be.greaterThan(0);
    // An override without an end: come back after the hold, as a 503 says.
    expect(overloadResponse(shed)).to.deep.equal({ status: 503, headers: { 'Retry-After': '1' } });
    expect(shed!.message).to.contain('background transaction on node a-primary of shard a');
    // The kit's own background work pauses through its throttle instead.
    expect(degradation.refuseAtNode('background', 'backfill', where)).to.equal(undefined);
    expect(degradation.throttleReason()).to.equal('degradation level 1 (override)');
    expect(degradation.refuseAtNode('normal', 'query', where)).to.equal(undefined);
    expect(degradation.readPreference(replicaRead, 'normal')).to.equal(replicaRead);
    await degradation.set(2);
    expect(degradation.readPreference(replicaRead, 'normal').maxLagMs).to.equal(30_000);
    expect(degradation.readPreference(replicaRead, 'critical').maxLagMs).to.equal(100);
    expect(degradation.readPreference({ ...replicaRead, from: 'primary' }, 'normal').from).to.equal('primary');
    expect([degradation.staleMs('normal'), degradation.staleMs('critical')]).to.deep.equal([60_000, 0]);
    const scatter = { table: 'users', read: true, shards: 2 };
    expect(degradation.refuseQuery('normal', scatter)).to.equal(undefined);
    await degradation.set(3);
    expect(degradation.refuseQuery('normal', scatter)).to.deep.include({ code: 'DEGRADED', level: 3, refused: 'scatter' });
    expect(degradation.refuseQuery('critical', scatter)).to.equal(undefined);
    expect(degradation.refuseQuery('normal', { ...scatter, shards: 1 })).to.equal(undefined);
    expect(degradation.refuseQuery('normal', { ...scatter, read: false })).to.equal(undefined);
    expect(degradation.refuseQuery('background', { ...scatter, shards: 1 })).to.deep.include({ refused: 'background' });
    expect(degradation.refuseQuery('critical', { ...scatter, shards: 1 })).to.equal(undefined);
  });

  it('refuses levels it does not have', async () => {
    const { degradation } = open();
    for (const level of [-1, 4, 1.5, Number.NaN]) {
      const failure = await degradation.set(level).catch((error: unknown) => error);
      expect(failure, String(level)).to.be.instanceOf(RangeError);
    }
  });
});
