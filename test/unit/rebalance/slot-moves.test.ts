import { expect } from 'chai';
import { HashRing, type RingShard } from '../../../lib/hashing/hash-ring.js';
import { SLOT_COUNT } from '../../../lib/hashing/key-hasher.js';
import { idealMovedFraction, planSlotMoves } from '../../../lib/rebalance/slot-moves.js';

const equal = (...names: string[]): RingShard[] => names.map((name) => ({ name, weight: 1 }));

async function plan(before: RingShard[], after: RingShard[]) {
  const [from, to] = await Promise.all([HashRing.create(before), HashRing.create(after)]);
  return { from, to, moves: planSlotMoves(from, before, to, after) };
}

describe('rebalance slot plan', () => {
  it('adding a third shard to two moves about a third of the slots, all to the new shard', async () => {
    const { from, moves } = await plan(equal('s1', 's2'), equal('s1', 's2', 's3'));
    expect(moves.idealFraction).to.be.closeTo(1 / 3, 1e-12);
    expect(moves.movedFraction).to.be.closeTo(1 / 3, 0.01);
    expect(moves.flows.every((flow) => flow.to === 's3')).to.equal(true);
    expect(moves.movedBetweenUnchanged).to.equal(0);
    // Each old shard gives up about a third of what it had.
    for (const flow of moves.flows) expect(flow.slots / from.slotCounts().get(flow.from)!).to.be.closeTo(1 / 3, 0.02);
  });

  it('removing a shard moves exactly its slots, spread over the others', async () => {
    const { from, moves } = await plan(equal('s1', 's2', 's3', 's4'), equal('s1', 's2', 's4'));
    expect(moves.movedSlots).to.equal(from.slotCounts().get('s3'));
    expect(moves.flows.every((flow) => flow.from === 's3')).to.equal(true);
    expect(new Set(moves.flows.map((flow) => flow.to))).to.deep.equal(new Set(['s1', 's2', 's4']));
    expect(moves.idealFraction).to.be.closeTo(1 / 4, 1e-12);
    expect(moves.movedBetweenUnchanged).to.equal(0);
  });

  it('a weight change moves slots only to or from the reweighted shard, close to the ideal', async () => {
    const before = equal('s1', 's2', 's3');
    const after = before.map((shard) => (shard.name === 's2' ? { ...shard, weight: 2 } : shard));
    const { from, to, moves } = await plan(before, after);
    expect(moves.idealFraction).to.be.closeTo(2 / 4 - 1 / 3, 1e-12);
    expect(moves.flows.every((flow) => flow.to === 's2')).to.equal(true);
    // Only s2 gains, so what moves is exactly its gain; the ring's balance (within a few %) sets the rest.
    expect(moves.movedSlots).to.equal(to.slotCounts().get('s2')! - from.slotCounts().get('s2')!);
    expect(moves.movedFraction / moves.idealFraction).to.be.within(0.95, 1.05);
    expect(moves.movedBetweenUnchanged).to.equal(0);
  });

  it('names the new owner of exactly the slots whose owner changes', async () => {
    const { from, to, moves } = await plan(equal('a', 'b', 'c'), equal('a', 'b', 'c', 'd', 'e'));
    let moved = 0;
    const wrong: number[] = [];
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const changes = from.ownerOfSlot(slot) !== to.ownerOfSlot(slot);
      if (moves.destinationOf(slot) !== (changes ? to.ownerOfSlot(slot) : undefined)) wrong.push(slot);
      if (changes) moved++;
    }
    expect(wrong).to.deep.equal([]);
    expect(moves.movedSlots).to.equal(moved);
    expect(moves.flows.reduce((sum, flow) => sum + flow.slots, 0)).to.equal(moved);
  });

  it('computes the ideal as the share that must change hands', () => {
    expect(idealMovedFraction(equal('a', 'b', 'c', 'd'), equal('a', 'b', 'c', 'd', 'e'))).to.be.closeTo(1 / 5, 1e-12);
    expect(idealMovedFraction(equal('a', 'b'), equal('a', 'b'))).to.equal(0);
    expect(idealMovedFraction(equal('a'), equal('b'))).to.be.closeTo(1, 1e-12);
  });
});
