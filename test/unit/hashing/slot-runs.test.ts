import { expect } from 'chai';
import { HashRing } from '../../../lib/hashing/hash-ring.js';
import { SLOT_COUNT } from '../../../lib/hashing/key-hasher.js';
import { groupRuns, runsFrom, slotRuns, slotsIn } from '../../../lib/hashing/slot-runs.js';

describe('slot runs', () => {
  it('lists the runs of selected slots, ends included, the first and last slot too', () => {
    const selected = new Set([0, 1, 2, 10, 12, 13, SLOT_COUNT - 1]);
    expect(slotRuns((slot) => selected.has(slot))).to.deep.equal([
      { first: 0, last: 2 },
      { first: 10, last: 10 },
      { first: 12, last: 13 },
      { first: SLOT_COUNT - 1, last: SLOT_COUNT - 1 },
    ]);
    expect(slotRuns(() => false)).to.deep.equal([]);
    expect(slotRuns(() => true)).to.deep.equal([{ first: 0, last: SLOT_COUNT - 1 }]);
  });

  it('groups runs within a width and a run count, splitting wide runs, losing and repeating no slot', () => {
    const runs = [
      { first: 0, last: 9 },
      { first: 20, last: 22 },
      { first: 30, last: 30 },
      { first: 40, last: 44 },
    ];
    const groups = groupRuns(runs, 4, 2);
    expect(groups).to.deep.equal([
      [{ first: 0, last: 3 }],
      [{ first: 4, last: 7 }],
      [
        { first: 8, last: 9 },
        { first: 20, last: 21 },
      ],
      [
        { first: 22, last: 22 },
        { first: 30, last: 30 },
      ],
      [{ first: 40, last: 43 }],
      [{ first: 44, last: 44 }],
    ]);
    for (const group of groups) {
      expect(slotsIn(group)).to.be.at.most(4);
      expect(group.length).to.be.at.most(2);
    }
    expect(slotsIn(groups.flat())).to.equal(slotsIn(runs));
  });

  it('resumes from a slot, cutting the run that spans it', () => {
    const runs = [
      { first: 0, last: 9 },
      { first: 20, last: 22 },
    ];
    expect(runsFrom(runs, 5)).to.deep.equal([
      { first: 5, last: 9 },
      { first: 20, last: 22 },
    ]);
    expect(runsFrom(runs, 10)).to.deep.equal([{ first: 20, last: 22 }]);
    expect(runsFrom(runs, 23)).to.deep.equal([]);
  });

  it('covers exactly the slots that change owner when a shard is added, in about one run per new ring point', async () => {
    const before = await HashRing.create([
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
    ]);
    const after = await HashRing.create([
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
      { name: 'c', weight: 1 },
    ]);
    const runs = slotRuns((slot) => before.ownerOfSlot(slot) !== after.ownerOfSlot(slot));
    let changed = 0;
    for (let slot = 0; slot < SLOT_COUNT; slot++) if (before.ownerOfSlot(slot) !== after.ownerOfSlot(slot)) changed++;
    expect(slotsIn(runs)).to.equal(changed);
    expect(changed / SLOT_COUNT).to.be.closeTo(1 / 3, 0.02);
    // 16,384 points of the new shard; neighbouring points merge some runs.
    expect(runs.length).to.be.within(8_000, 16_384);
  });
});
