import { expect } from 'chai';
import { addSlotColumn, createShardKit, dropSlotColumn, SchemaMigrator, type ShardKit } from '../../lib/index.js';
import { SLOT_COUNT } from '../../lib/hashing/key-hasher.js';
import { countKeysToWalk } from '../../lib/migrations/online/slot-key-count.js';
import { TARGETS } from '../support/targets.js';

const COLUMN = 'shard_slot';

for (const target of TARGETS) {
  describe(`slot columns on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;

    before(async () => {
      kit = await createShardKit({ ...target.config, tables: { ...target.config.tables, users: { shardKey: 'id', slotColumn: COLUMN } } });
      const migrator = new SchemaMigrator(kit);
      await migrator.rollback({ all: true });
      await migrator.latest();
      for (const shard of kit.shardNames) await addSlotColumn(kit.forShard(shard), 'users', { shardKey: 'id', column: COLUMN });
    });

    after(async () => {
      // The shipped schema again for the suites that follow.
      await new SchemaMigrator(kit).rollback({ all: true });
      await new SchemaMigrator(kit).latest();
      await kit.close();
    });

    const slotOf = async (id: number) => {
      const row = await kit.forKey(id)('users').where('id', id).first(COLUMN);
      return row === undefined ? undefined : (row[COLUMN] as number | null);
    };

    it("writes the router's slot with every insert and upsert through the kit, as integer keys of any spelling", async () => {
      const rows = [
        { id: 1, name: 'One', email: 'one@example.com' },
        { id: '0002', name: 'Two', email: 'two@example.com' },
      ];
      await kit.table('users').insert(rows);
      expect(rows[0], "the caller's row is not changed").to.not.have.property(COLUMN);
      await kit.transaction(3, (trx) => trx.table('users').insert({ id: 3, name: 'Three', email: 'three@example.com' }));
      await kit.table('users').insert({ id: 4, name: 'Four', email: 'four@example.com' }).onConflict('id').merge();
      await kit.table('users').insert({ id: 4, name: 'Four again', email: 'four@example.com' }).onConflict('id').merge();
      for (const id of [1, 2, 3, 4]) expect(await slotOf(id), `the slot of ${id}`).to.equal(kit.topology.ring.slotOf(id));
    });

    it('leaves a row inserted past the kit without a slot, and clears the slot when a key changes without it', async () => {
      await kit.forKey(10)('users').insert({ id: 10, name: 'Past', email: 'past@example.com' });
      expect(await slotOf(10)).to.equal(null);
      await kit.table('users').insert({ id: 11, name: 'Eleven', email: 'eleven@example.com' });
      // A new key the same shard owns, changed past the kit and through it.
      const shard = kit.shardFor(11);
      const sameShard = (from: number) => {
        for (let id = from; ; id++) if (kit.shardFor(id) === shard) return id;
      };
      const [pastKit, byKit] = [sameShard(1000), sameShard(2000)];
      await kit.forShard(shard)('users').where('id', 11).update({ id: pastKit });
      expect(await slotOf(pastKit), 'changed past the kit').to.equal(null);
      await kit.forShard(shard)('users').where('id', pastKit).update({ [COLUMN]: kit.topology.ring.slotOf(pastKit) });
      await kit.table('users').where('id', pastKit).update({ name: 'Renamed' });
      expect(await slotOf(pastKit), 'an update that keeps the key keeps the slot').to.equal(kit.topology.ring.slotOf(pastKit));
      await kit.table('users').where('id', pastKit).update({ id: byKit });
      expect(await slotOf(byKit), 'changed through the kit').to.equal(null);
      // An update setting both keeps the slot it sets.
      await kit.forShard(shard)('users').where('id', byKit).update({ id: pastKit, [COLUMN]: kit.topology.ring.slotOf(pastKit) });
      expect(await slotOf(pastKit)).to.equal(kit.topology.ring.slotOf(pastKit));
    });

    if (target.name !== 'pglite') {
      it('sizes a walk by the estimate of the rows when another session holds the table past the count\'s bound, by the exact count when none does', async () => {
        const shard = kit.shardNames[0]!;
        const db = kit.forShard(shard);
        const family = target.name.startsWith('mariadb') ? 'mysql' : 'postgres';
        const where = { table: 'users', shardKey: 'id', column: COLUMN, runs: [{ first: 0, last: SLOT_COUNT - 1 }] };
        await db.raw(family === 'postgres' ? 'analyze users' : 'analyze table users');
        const [counted] = (await db('users').whereNotNull(COLUMN).countDistinct({ n: 'id' })) as { n: unknown }[];
        const n = counted?.n;
        expect(Number(n), 'rows with slots from the tests before').to.be.greaterThan(0);
        expect(await countKeysToWalk(db, family, where, 5000)).to.deep.equal({ keys: Number(n), exact: true });

        const holder = await db.transaction();
        try {
          await holder.raw(family === 'postgres' ? 'lock table users in access exclusive mode' : 'lock tables users write');
          const started = performance.now();
          const held = await countKeysToWalk(db, family, where, 300);
          const tookMs = performance.now() - started;
          expect(held.exact, 'the count gave way').to.equal(false);
          expect(held.keys, 'the estimate of the analyzed table').to.be.within(Math.floor(Number(n) / 2), Number(n) * 2);
          expect(tookMs, 'about the bound, not the lock').to.be.below(5000);
        } finally {
          if (family === 'mysql') await holder.raw('unlock tables');
          await holder.rollback();
        }
      });
    }

    it('drops the column, its index and its trigger, after which the table takes writes as before', async () => {
      const db = kit.forShard(kit.shardNames[0]!);
      await dropSlotColumn(db, 'users', { shardKey: 'id', column: COLUMN });
      expect(await db.schema.hasColumn('users', COLUMN)).to.equal(false);
      await db('users').insert({ id: 5000, name: 'After', email: 'after@example.com' });
      await db('users').where('id', 5000).update({ id: 5001 });
      expect(await db('users').where('id', 5001).first('name')).to.deep.equal({ name: 'After' });
      await addSlotColumn(db, 'users', { shardKey: 'id', column: COLUMN });
      expect(await db.schema.hasColumn('users', COLUMN), 'added again: nothing of the first was left behind').to.equal(true);
    });
  });
}
