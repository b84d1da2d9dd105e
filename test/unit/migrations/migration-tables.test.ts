import { expect } from 'chai';
import { resolveConfig } from '../../../lib/config/resolve-config.js';
import { defineOnlineMigration } from '../../../lib/config/online-migration.js';
import { HashRing } from '../../../lib/hashing/hash-ring.js';
import { migrationTables } from '../../../lib/migrations/online/migration-tables.js';

describe('online migration tables with slot columns', () => {
  it("writes each side's slot from its own shard key: a row spread from the other table does not keep the other table's slot", async () => {
    const ring = await HashRing.create([
      { name: 's1', weight: 1 },
      { name: 's2', weight: 1 },
    ]);
    const config = resolveConfig({
      shards: ['s1', 's2'].map((name) => ({ name, primary: { dialect: 'pglite' as const, connection: {} } })),
      tables: { orders: { shardKey: 'id', slotColumn: 'shard_slot' }, orders_by_user: { shardKey: 'user_id', slotColumn: 'shard_slot' } },
    });
    // Copies every column, the slot among them.
    const migration = defineOnlineMigration({ name: 'by-user', source: 'orders', target: 'orders_by_user', key: ['id', 'user_id'], transform: (row) => ({ ...row }), reverse: (row) => ({ ...row }) });
    const { migration: stamped } = migrationTables(migration, config, { ring }, (table) => (table === 'orders_by_user' ? { table, column: 'user_id', type: 'integer' } : undefined));
    const order = { id: 7, user_id: 42, shard_slot: ring.slotOf(7) };
    expect(stamped.transform(order)).to.deep.equal({ id: 7, user_id: 42, shard_slot: ring.slotOf(42) });
    // By the key column's type: '042' on an integer column is the user 42.
    expect(stamped.transform({ ...order, user_id: '042' }).shard_slot).to.equal(ring.slotOf(42));
    expect(stamped.reverse({ id: 7, user_id: 42, shard_slot: ring.slotOf(42) })).to.deep.equal(order);
    expect(order, "the caller's row is not changed").to.deep.equal({ id: 7, user_id: 42, shard_slot: ring.slotOf(7) });
  });

  it('leaves rows alone where a table has no slot column', async () => {
    const ring = await HashRing.create([{ name: 's1', weight: 1 }]);
    const config = resolveConfig({ shards: [{ name: 's1', primary: { dialect: 'pglite', connection: {} } }], tables: { users: { shardKey: 'id' }, users_v2: { shardKey: 'id' } } });
    const migration = defineOnlineMigration({ name: 'v2', source: 'users', target: 'users_v2', key: ['id'], transform: (row) => ({ ...row, extra: 1 }), reverse: (row) => row });
    expect(migrationTables(migration, config, { ring }, () => undefined).migration.transform({ id: 1 })).to.deep.equal({ id: 1, extra: 1 });
  });
});
