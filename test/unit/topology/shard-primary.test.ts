import { expect } from 'chai';
import type { NodeHandle } from '../../../lib/access/open-node.js';
import { ShardPrimary } from '../../../lib/topology/shard-primary.js';

// Only the name matters to the switch state, and how often the node's connections were retired: no node is reached here.
const node = (name: string) => {
  const fake = { config: { name }, retired: 0, retireConnections: () => fake.retired++ };
  return fake as unknown as NodeHandle & { retired: number };
};

describe('a shard primary and its switches', () => {
  const primary = node('p');
  const candidate = node('r1');

  it('answers at once while no switch is under way', async () => {
    const role = new ShardPrimary('s', primary, [candidate], 10_000);
    const started = performance.now();
    expect(await role.ready(undefined)).to.equal(primary);
    expect(performance.now() - started).to.be.lessThan(20);
  });

  it('holds callers during a switch and hands them the new primary, fencing the old one', async () => {
    const role = new ShardPrimary('s', primary, [candidate], 10_000);
    const hold = role.beginSwitch()!;
    expect(role.beginSwitch(), 'one switch at a time').to.equal(undefined);
    const held = role.ready(performance.now() + 5000);
    setTimeout(() => role.switchTo(candidate, hold), 30);
    const retiredBefore = candidate.retired;
    expect(await held).to.equal(candidate);
    expect(role.epoch).to.equal(1);
    expect(candidate.retired - retiredBefore, "the new primary's connections from its time as a replica are retired").to.equal(1);
    expect(role.isFenced(primary)).to.equal(true);
    expect(role.switching).to.equal(false);
  });

  it('holds no caller past its own deadline, nor past the hold window (a planned switch brings its own)', async () => {
    const role = new ShardPrimary('s', primary, [candidate], 120);
    const hold = role.beginSwitch()!;
    let started = performance.now();
    expect(await role.ready(performance.now() + 40)).to.equal(primary);
    expect(performance.now() - started).to.be.within(30, 100);
    started = performance.now();
    await role.ready(undefined);
    expect(performance.now() - started).to.be.within(40, 160);
    role.endSwitch(hold);
    role.beginSwitch(400);
    started = performance.now();
    await role.ready(undefined);
    expect(performance.now() - started).to.be.within(350, 500);
  });

  it('lets only the switch under way end it: a stale one neither switches nor releases', () => {
    const role = new ShardPrimary('s', primary, [candidate], 1000);
    const first = role.beginSwitch()!;
    role.endSwitch(first);
    const second = role.beginSwitch()!;
    expect(role.switchTo(candidate, first)).to.equal(false);
    role.endSwitch(first, true);
    expect([role.node, role.switching, role.holds(second), role.resumed]).to.deep.equal([primary, true, true, 0]);
    expect(role.switchTo(candidate), 'without a hold only when none is under way').to.equal(false);
    role.endSwitch(second, true);
    expect([role.resumed, role.switchTo(candidate)]).to.deep.equal([1, true]);
  });

  it('tells its listener of a suspected failure only for the current primary, and only with candidates', () => {
    const heard: string[] = [];
    const role = new ShardPrimary('s', primary, [candidate], 1000);
    role.onSuspicion((_, suspect) => heard.push(suspect.config.name));
    role.suspect(candidate, new Error('not the primary'));
    role.suspect(primary, new Error('refused'));
    const alone = new ShardPrimary('t', primary, [], 1000);
    alone.onSuspicion((_, suspect) => heard.push(`alone ${suspect.config.name}`));
    alone.suspect(primary, new Error('refused'));
    expect(heard).to.deep.equal(['p']);
  });
});
