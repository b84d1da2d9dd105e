import { expect } from 'chai';
import { HashRing, type RingShard } from '../../../lib/hashing/hash-ring.js';
import { SLOT_COUNT } from '../../../lib/hashing/key-hasher.js';

const shards = (count: number, weight = 1): RingShard[] =>
  Array.from({ length: count }, (_, index) => ({ name: `shard-${index + 1}`, weight }));

const keys = Array.from({ length: 200_000 }, (_, index) => `user:${index}:${(index * 7919) % 100_003}`);

function loadOf(ring: HashRing): Map<string, number> {
  const load = new Map<string, number>(ring.shardNames.map((name) => [name, 0]));
  for (const key of keys) {
    const shard = ring.shardFor(key);
    load.set(shard, load.get(shard)! + 1);
  }
  return load;
}

function ownersBySlot(ring: HashRing): string[] {
  return Array.from({ length: SLOT_COUNT }, (_, slot) => ring.ownerOfSlot(slot));
}

function changedSlots(before: readonly string[], after: readonly string[]): number[] {
  return before.flatMap((owner, slot) => (after[slot] === owner ? [] : [slot]));
}

describe('HashRing', () => {
  for (const count of [4, 16, 64]) {
    it(`balances ${keys.length} keys over ${count} equal shards within 5% of the mean`, async () => {
      const load = [...loadOf(await HashRing.create(shards(count))).values()];
      const mean = keys.length / count;
      expect(Math.max(...load) / mean).to.be.below(1.05);
      expect(Math.min(...load) / mean).to.be.above(0.95);
    });
  }

  it('adding a 17th shard to 16 moves only slots to the new shard, about 1/17 of them', async () => {
    const before = ownersBySlot(await HashRing.create(shards(16)));
    const after = ownersBySlot(await HashRing.create(shards(17)));
    const moved = changedSlots(before, after);
    expect(moved.filter((slot) => after[slot] !== 'shard-17'), 'slots moved between existing shards').to.be.empty;
    expect(moved.length / SLOT_COUNT / (1 / 17)).to.be.within(0.95, 1.05);
  });

  it('removing any one shard moves exactly the slots it owned', async () => {
    const all = shards(8);
    const before = ownersBySlot(await HashRing.create(all));
    for (const removed of ['shard-1', 'shard-5', 'shard-8']) {
      const after = ownersBySlot(await HashRing.create(all.filter((shard) => shard.name !== removed)));
      const owned = before.flatMap((owner, slot) => (owner === removed ? [slot] : []));
      expect(changedSlots(before, after)).to.deep.equal(owned);
    }
  });

  it('gives a shard of weight 2 twice the slots of a shard of weight 1', async () => {
    const ring = await HashRing.create([...shards(4), { name: 'big', weight: 2 }]);
    const counts = ring.slotCounts();
    const standard = [1, 2, 3, 4].map((index) => counts.get(`shard-${index}`)!);
    const meanStandard = standard.reduce((sum, count) => sum + count, 0) / standard.length;
    expect(counts.get('big')! / meanStandard).to.be.within(1.95, 2.05);
    expect(counts.get('big')! / SLOT_COUNT).to.be.within((2 / 6) * 0.97, (2 / 6) * 1.03);
  });

  it('reweighting one shard moves slots only to or from that shard', async () => {
    const before = ownersBySlot(await HashRing.create(shards(6)));
    const after = ownersBySlot(
      await HashRing.create(shards(6).map((shard) => (shard.name === 'shard-3' ? { ...shard, weight: 1.5 } : shard))),
    );
    const moved = changedSlots(before, after);
    expect(moved.filter((slot) => after[slot] !== 'shard-3'), 'slots that moved elsewhere than to shard-3').to.be.empty;
    // shard-3 goes from 1/6 to 1.5/6.5 of the ring.
    expect(moved.length / SLOT_COUNT).to.be.within((1.5 / 6.5 - 1 / 6) * 0.85, (1.5 / 6.5 - 1 / 6) * 1.15);
  });

  it('places keys the same whatever order the shards are listed in', async () => {
    const forward = await HashRing.create(shards(5));
    const backward = await HashRing.create(shards(5).reverse());
    for (const key of keys.slice(0, 5000)) expect(backward.shardFor(key)).to.equal(forward.shardFor(key));
  });

  it('routes a number, a bigint and a decimal string of one integer to one shard', async () => {
    const ring = await HashRing.create(shards(16));
    for (const value of [0, 1, -1, 42, 123456789, Number.MAX_SAFE_INTEGER]) {
      expect(ring.shardFor(BigInt(value))).to.equal(ring.shardFor(value));
      expect(ring.shardFor(String(value))).to.equal(ring.shardFor(value));
    }
  });

  it('rejects duplicate names, bad weights and names other languages could sort differently', async () => {
    for (const bad of [
      [{ name: 'a', weight: 1 }, { name: 'a', weight: 1 }],
      [{ name: 'a', weight: 0 }],
      [{ name: 'a', weight: Number.NaN }],
      [{ name: 'ä', weight: 1 }],
      [],
    ]) {
      let error: unknown;
      await HashRing.create(bad).catch((caught: unknown) => {
        error = caught;
      });
      expect(error, JSON.stringify(bad)).to.have.property('code', 'CONFIG_INVALID');
    }
  });
});
