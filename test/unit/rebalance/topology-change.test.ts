import { expect } from 'chai';
import { InvalidTopologyChangeError } from '../../../lib/errors.js';
import { applyTopologyChange } from '../../../lib/rebalance/topology-change.js';

const ring = [
  { name: 's1', weight: 1 },
  { name: 's2', weight: 1 },
];
const known = ['s1', 's2', 's3'];

function problemsOf(attempt: () => unknown): string[] {
  try {
    attempt();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidTopologyChangeError);
    expect((error as InvalidTopologyChangeError).code).to.equal('INVALID_TOPOLOGY_CHANGE');
    return [...(error as InvalidTopologyChangeError).problems];
  }
  throw new Error('the change was accepted');
}

describe('topology changes', () => {
  it('adds, removes and reweights', () => {
    expect(applyTopologyChange(ring, { add: ['s3'] }, known)).to.deep.equal([...ring, { name: 's3', weight: 1 }]);
    expect(applyTopologyChange(ring, { add: ['s3'], weights: { s3: 2 } }, known)).to.deep.equal([...ring, { name: 's3', weight: 2 }]);
    expect(applyTopologyChange(ring, { remove: ['s1'] }, known)).to.deep.equal([{ name: 's2', weight: 1 }]);
    expect(applyTopologyChange(ring, { weights: { s2: 3 } }, known)).to.deep.equal([ring[0], { name: 's2', weight: 3 }]);
  });

  it('reports every problem at once, each naming what to fix', () => {
    const problems = problemsOf(() => applyTopologyChange(ring, { add: ['s1', 's9'], remove: ['s7'], weights: { s2: 0 } }, known));
    expect(problems).to.have.length(4);
    expect(problems[0]).to.match(/--add s1: it already owns keys/);
    expect(problems[1]).to.match(/--add s9: no shard of that name in the config/);
    expect(problems[2]).to.match(/--remove s7: not a shard of the ring/);
    expect(problems[3]).to.match(/--weight s2=0: a weight must be a number > 0/);
  });

  it('refuses a change that leaves no shard or changes nothing', () => {
    expect(problemsOf(() => applyTopologyChange(ring, { remove: ['s1', 's2'] }, known))[0]).to.match(/leave no shard/);
    expect(problemsOf(() => applyTopologyChange(ring, { weights: { s1: 1 } }, known))[0]).to.match(/nothing changes/);
    expect(problemsOf(() => applyTopologyChange(ring, { remove: ['s1'], weights: { s1: 2 } }, known))[0]).to.match(/being removed/);
  });
});
