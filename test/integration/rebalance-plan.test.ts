import { expect } from 'chai';
import { HashRing } from '../../lib/hashing/hash-ring.js';
import type { TableMoves } from '../../lib/rebalance/row-moves.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const USERS = 600;

const flowsOf = (moves: TableMoves | undefined) => Object.fromEntries((moves?.flows ?? []).map((flow) => [`${flow.from}->${flow.to}`, flow.rows]));

for (const target of TARGETS) {
  describe(`rebalance plan on ${target.name}`, function () {
    this.timeout(60_000);

    it('counts the rows each shard would send per table, and the rows already on the wrong shard', async () => {
      const kit = await openFreshKit(target);
      try {
        const [first, second] = kit.topology.ring.shardNames as [string, string];
        const after = await HashRing.create(kit.config.shards.map((shard) => ({ name: shard.name, weight: shard.name === second ? 3 : shard.weight })));
        await kit.table('users').insert(Array.from({ length: USERS }, (_, index) => ({ id: index + 1, name: `User ${index + 1}`, email: `u${index + 1}@example.com` })));
        await kit.table('orders').insert(Array.from({ length: USERS * 2 }, (_, index) => ({ user_id: (index % USERS) + 1, id: index + 1, amount_cents: index })));
        // A row on a shard that does not own it, whose key stays put: misplaced, but not part of any flow.
        const stray = Array.from({ length: 5000 }, (_, index) => 100_000 + index).find((id) => kit.shardFor(id) === first && after.shardFor(id) === first)!;
        await kit.forShard(second)('users').insert({ id: stray, name: 'Stray', email: 'stray@example.com' });

        const plan = await kit.rebalance().plan({ weights: { [second]: 3 } });

        const expected: Record<string, number> = {};
        for (let id = 1; id <= USERS; id++) {
          const [from, to] = [kit.shardFor(id), after.shardFor(id)];
          if (from !== to) expected[`${from}->${to}`] = (expected[`${from}->${to}`] ?? 0) + 1;
        }
        const users = plan.tables.find((moves) => moves.table === 'users');
        const orders = plan.tables.find((moves) => moves.table === 'orders');
        expect(flowsOf(users)).to.deep.equal(expected);
        expect(flowsOf(orders)).to.deep.equal(Object.fromEntries(Object.entries(expected).map(([pair, rows]) => [pair, rows * 2])));
        expect(users).to.include({ rows: USERS + 1, misplacedRows: 1 });
        expect(orders).to.include({ rows: USERS * 2, misplacedRows: 0 });
        expect(Object.keys(expected).every((pair) => pair.endsWith(`->${second}`))).to.equal(true);
      } finally {
        await kit.close();
      }
    });
  });
}
