import { expect } from 'chai';
import type { LagReading } from '../../../lib/replicas/lag-reading.js';
import { judgeReplicas, pickReplica, type ReplicaCandidate } from '../../../lib/replicas/replica-eligibility.js';
import { PRIMARY_ONLY } from '../../../lib/replicas/read-session.js';

const NOW = 10_000;
const fresh = (lagAtProbe: number, ageMs = 0, position = '0/100'): LagReading => ({
  measuredAt: NOW - ageMs,
  freshAsOf: NOW - ageMs - lagAtProbe,
  position,
});
const candidate = (node: string, reading: LagReading | undefined, extra: Partial<ReplicaCandidate> = {}): ReplicaCandidate => ({
  node,
  reading,
  available: true,
  inFlight: 0,
  ...extra,
});
const lsn = (position: string, target: string) => Number.parseInt(position.split('/')[1]!, 16) >= Number.parseInt(target.split('/')[1]!, 16);

describe('replica eligibility', () => {
  const cases: [string, ReplicaCandidate, boolean, string][] = [
    ['a fresh replica', candidate('r', fresh(100)), true, 'eligible'],
    ['lag exactly at the bound', candidate('r', fresh(500)), true, 'eligible'],
    ['lag over the bound', candidate('r', fresh(501)), false, 'lag 501 ms > 500 ms'],
    ['a reading that aged past the bound (100 ms lag, 450 ms ago)', candidate('r', fresh(100, 450)), false, 'lag 550 ms > 500 ms'],
    ['unknown lag (replication stopped)', candidate('r', { measuredAt: NOW, freshAsOf: undefined, position: undefined, problem: 'replication is not running' }), false, 'lag unknown: replication is not running'],
    ['never measured', candidate('r', undefined), false, 'lag unknown: not measured yet'],
    ['breaker open', candidate('r', fresh(0), { available: false }), false, 'marked down (breaker open)'],
  ];
  for (const [label, replica, eligible, reason] of cases) {
    it(`${label}: ${eligible ? 'eligible' : 'not eligible'}`, () => {
      const judgement = judgeReplicas([replica], { now: NOW, maxLagMs: 500 });
      expect(judgement.eligible.map((entry) => entry.node)).to.deep.equal(eligible ? ['r'] : []);
      expect(judgement.verdicts[0]!.reason).to.equal(reason);
    });
  }

  it('never treats unknown lag as zero, whatever the bound', () => {
    const unknown = candidate('r', { measuredAt: NOW, freshAsOf: undefined, position: '0/100', problem: 'probe failed' });
    expect(judgeReplicas([unknown], { now: NOW, maxLagMs: Number.MAX_SAFE_INTEGER }).eligible).to.be.empty;
  });

  it('with a consistency token, needs a replica whose applied position reached it', () => {
    const rules = { now: NOW, maxLagMs: 500, reached: lsn };
    const behind = candidate('behind', fresh(0, 0, '0/100'));
    const ahead = candidate('ahead', fresh(0, 0, '0/200'));
    const judgement = judgeReplicas([behind, ahead], { ...rules, after: '0/180' });
    expect(judgement.eligible.map((entry) => entry.node)).to.deep.equal(['ahead']);
    expect(judgement.verdicts[0]!.reason).to.equal('has not applied the read-your-writes token yet');
    expect(judgeReplicas([ahead], { ...rules, after: PRIMARY_ONLY }).eligible).to.be.empty;
  });

  it('picks the replica with the fewest queries in flight and rotates ties', () => {
    const eligible = judgeReplicas(
      [candidate('busy', fresh(0), { inFlight: 3 }), candidate('idle-1', fresh(0)), candidate('idle-2', fresh(0))],
      { now: NOW, maxLagMs: 500 },
    ).eligible;
    expect([0, 1, 2, 3].map((turn) => pickReplica(eligible, turn)?.node)).to.deep.equal(['idle-1', 'idle-2', 'idle-1', 'idle-2']);
    expect(pickReplica([], 0)).to.equal(undefined);
  });
});
