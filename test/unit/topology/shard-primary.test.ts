import { expect } from 'chai';
import type { NodeHandle } from '../../../lib/access/open-node.js';
import { ShardPrimary } from '../../../lib/topology/shard-primary.js';

// Only the name matters to the switch state: no node is reached here.
const node = (name: string) => ({ config: { name } }) as unknown as NodeHandle;

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
    expect(role.beginSwitch()).to.equal(true);
    expect(role.beginSwitch(), 'one switch at a time').to.equal(false);
    const held = role.ready(performance.now() + 5000);
    setTimeout(() => role.switchTo(candidate), 30);
    expect(await held).to.equal(candidate);
    expect(role.epoch).to.equal(1);
    expect(role.isFenced(primary)).to.equal(true);
    expect(role.switching).to.equal(false);
  });

  it('holds no caller past its own deadline, nor past the hold window', async () => {
    const role = new ShardPrimary('s', primary, [candidate], 120);
    role.beginSwitch();
    let started = performance.now();
    expect(await role.ready(performance.now() + 40)).to.equal(primary);
    expect(performance.now() - started).to.be.within(30, 100);
    started = performance.now();
    await role.ready(undefined);
    expect(performance.now() - started).to.be.within(40, 160);
  });

  it('counts a switch that ended with the primary answering again, not as a switch', () => {
    const role = new ShardPrimary('s', primary, [candidate], 1000);
    role.beginSwitch();
    role.endSwitch(true);
    expect([role.epoch, role.resumed, role.isFenced(primary)]).to.deep.equal([0, 1, false]);
    role.endSwitch(true);
    expect(role.resumed, 'no switch was under way').to.equal(1);
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
