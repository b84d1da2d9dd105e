import { expect } from 'chai';
import type { Knex } from 'knex';
import {
  createShardKit,
  HashRing,
  MigrationGateError,
  type ShardKit,
  type ShardKitConfig,
  TopologySwitchingError,
} from '../../lib/index.js';
import { canonical } from '../../lib/migrations/online/row-identity.js';
import { addSlotColumns, resetForRebalance, rowsByShard, withStandbyShard } from '../support/rebalance-targets.js';
import { MARKERS_TABLE, RUN_MARKERS_TABLE } from '../../lib/rebalance/move-markers.js';
import { ACKS_TABLE } from '../../lib/migrations/online/control-store.js';
import { REBALANCE_NAME } from '../../lib/rebalance/rebalance-record.js';
import { allowWrites, refuseWrites } from '../support/refuse-writes.js';
import type { ShardDatabases } from '../../lib/access/shard-databases.js';
import { shadowCompare } from '../../lib/migrations/online/shadow-read.js';
import { TARGETS } from '../support/targets.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const USERS = 1200;

/** Runs a write again while it is refused with the documented retryable TopologySwitchingError. */
async function retryingSwitch(write: () => PromiseLike<unknown>, onRetry: () => void = () => {}): Promise<unknown> {
  for (;;) {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof TopologySwitchingError)) throw error;
      onRetry();
      await sleep(20);
    }
  }
}

interface Model {
  users: Map<number, string>;
  orders: Map<string, number>;
}

/**
 * Writers on two instances, each owning the ids that are equal to its number modulo the writer
 * count, so that the expected state (the model) is exact: inserts of users with two orders,
 * renames, order updates, deletes of a user with its orders; each as separate statements, or
 * (`transactions`) one routed transaction per operation. A write refused with the documented
 * retryable TopologySwitchingError is retried. Readers check that every user the model holds is
 * found by a point read, and that a read of every shard returns each id once.
 */
function workload(kits: ShardKit[], model: Model, firstNewId: number, style: 'statements' | 'transactions' = 'statements') {
  let running = true;
  const failures: unknown[] = [];
  let switchingRetries = 0;
  let reads = 0;
  const deleting = new Set<number>();
  const retrying = (write: () => PromiseLike<unknown>) => retryingSwitch(write, () => switchingRetries++);
  const writer = async (index: number, count: number) => {
    const kit = kits[index % kits.length]!;
    // One user's statements: each a write of its own (retried alone), or all in one routed transaction.
    type Statement = (db: (table: string) => Knex.QueryBuilder) => PromiseLike<unknown>;
    const write = async (id: number, statements: Statement[]) => {
      if (style === 'statements') for (const statement of statements) await retrying(() => statement((table) => kit.table(table)));
      else {
        await retrying(() =>
          kit.transaction(id, async (trx) => {
            for (const statement of statements) await statement((table) => trx.table(table));
          }),
        );
      }
    };
    let next = firstNewId + index;
    let step = 0;
    while (running) {
      step++;
      const mine = [...model.users.keys()].filter((id) => id % count === index);
      const id = mine[(step * 7919) % Math.max(1, mine.length)];
      try {
        if (step % 5 === 0 || id === undefined) {
          const created = next;
          next += count;
          const name = `New ${created}`;
          await write(created, [
            (db) => db('users').insert({ id: created, name, email: `n${created}@example.com` }),
            (db) => db('orders').insert([1, 2].map((order) => ({ user_id: created, id: order, amount_cents: order }))),
          ]);
          model.users.set(created, name);
          for (const order of [1, 2]) model.orders.set(`${created}:${order}`, order);
        } else if (step % 11 === 0) {
          deleting.add(id);
          await write(id, [(db) => db('orders').where('user_id', id).del(), (db) => db('users').where('id', id).del()]);
          model.users.delete(id);
          for (const order of [1, 2]) model.orders.delete(`${id}:${order}`);
        } else if (step % 3 === 0) {
          await write(id, [(db) => db('orders').where({ user_id: id, id: 1 }).update({ amount_cents: step })]);
          if (model.orders.has(`${id}:1`)) model.orders.set(`${id}:1`, step);
        } else {
          await write(id, [(db) => db('users').where('id', id).first('name'), (db) => db('users').where('id', id).update({ name: `Renamed ${step}` })]);
          model.users.set(id, `Renamed ${step}`);
        }
      } catch (error) {
        failures.push(error);
      }
      await sleep(3);
    }
  };
  const reader = async (kit: ShardKit) => {
    let step = 0;
    while (running) {
      step++;
      try {
        const ids = [...model.users.keys()];
        const id = ids[(step * 104_729) % ids.length]!;
        const found = await kit.table('users').where('id', id).first('id');
        // A user being deleted while the read ran is not a missing row.
        if (!found && !deleting.has(id)) failures.push(new Error(`point read of user ${id} returned nothing`));
        if (step % 10 === 0) {
          const all = (await kit.table('users').select('id')) as { id: unknown }[];
          const distinct = new Set(all.map((row) => canonical(row.id)));
          if (distinct.size !== all.length) failures.push(new Error(`a read of every shard returned ${all.length - distinct.size} ids twice`));
        }
        reads++;
      } catch (error) {
        failures.push(error);
      }
      await sleep(2);
    }
  };
  const writers = 4;
  const tasks = [...Array.from({ length: writers }, (_, index) => writer(index, writers)), reader(kits[0]!), reader(kits[1] ?? kits[0]!)];
  return {
    failures,
    stats: () => ({ switchingRetries, reads }),
    stop: async () => {
      running = false;
      await Promise.all(tasks);
    },
  };
}

/** The model equals what the shards hold, and every row lives on exactly its owner under `ring`. */
async function expectPlacedExactly(kit: ShardKit, model: Model, ring: HashRing) {
  const users = await rowsByShard(kit, 'users');
  const orders = await rowsByShard(kit, 'orders');
  const misplaced = [...users.map(({ shard, row }) => ({ shard, key: row.id })), ...orders.map(({ shard, row }) => ({ shard, key: row.user_id }))].filter(
    ({ shard, key }) => ring.shardFor(key) !== shard,
  );
  expect(misplaced, 'rows on a shard that does not own them').to.deep.equal([]);
  const actualUsers = new Map(users.map(({ row }) => [Number(row.id), String(row.name)]));
  expect(users.length, 'users stored once each').to.equal(actualUsers.size);
  expect(actualUsers).to.deep.equal(model.users);
  const actualOrders = new Map(orders.map(({ row }) => [`${row.user_id}:${row.id}`, Number(row.amount_cents)]));
  expect(orders.length, 'orders stored once each').to.equal(actualOrders.size);
  expect(actualOrders).to.deep.equal(model.orders);
  return { users: users.length, orders: orders.length, byShard: Object.fromEntries(kit.shardNames.map((shard) => [shard, users.filter((entry) => entry.shard === shard).length])) };
}

async function seed(kit: ShardKit, model: Model) {
  for (let start = 1; start <= USERS; start += 300) {
    const ids = Array.from({ length: 300 }, (_, index) => start + index);
    await kit.table('users').insert(ids.map((id) => ({ id, name: `User ${id}`, email: `u${id}@example.com` })));
    await kit.table('orders').insert(ids.flatMap((id) => [1, 2].map((order) => ({ user_id: id, id: order, amount_cents: id * 10 + order }))));
    for (const id of ids) {
      model.users.set(id, `User ${id}`);
      for (const order of [1, 2]) model.orders.set(`${id}:${order}`, id * 10 + order);
    }
  }
}

/** Seeded rows and a rebalance started that adds the third shard, with the rings before and after. */
async function seededAddition(kit: ShardKit) {
  const model: Model = { users: new Map(), orders: new Map() };
  await seed(kit, model);
  const before = kit.topology.ring;
  const rebalance = kit.rebalance();
  const plan = await rebalance.start({ add: ['third'] });
  return { model, before, rebalance, after: await HashRing.create(plan.after) };
}

/** Moving rows found by listing every key, or by a slot column's index (users and orders each with one). */
const WALKS = [{ name: 'key walk' }, { name: 'slot column', slotColumn: 'shard_slot' }] as const;

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite'))
for (const walk of WALKS) {
  const slotColumn = 'slotColumn' in walk ? walk.slotColumn : undefined;
  describe(`rebalance on ${target.name} (${walk.name})`, function () {
    this.timeout(240_000);
    let config: ShardKitConfig;
    let kits: ShardKit[] = [];
    let stopWorkload = async () => {};

    const open = async () => {
      kits = await Promise.all([1, 2].map(() => createShardKit({ ...config, migrations: { pollIntervalMs: 100, leaseMs: 3000 } })));
      return kits as [ShardKit, ShardKit];
    };

    before(async () => {
      const standby = await withStandbyShard(target);
      config = slotColumn
        ? { ...standby, tables: { ...standby.tables, users: { shardKey: 'id', slotColumn }, orders: { shardKey: 'user_id', slotColumn } } }
        : standby;
    });

    beforeEach(async () => {
      await resetForRebalance(config);
      if (slotColumn) await addSlotColumns(config, slotColumn);
    });

    afterEach(async () => {
      await stopWorkload();
      stopWorkload = async () => {};
      await Promise.all(kits.map((kit) => kit.close()));
      kits = [];
    });

    after(async () => {
      // Leave no topology record behind for the other suites on this cluster.
      if (config) await resetForRebalance(config);
    });

    it('adds a third shard to two, then removes it, under a concurrent workload, moving about a third of the rows', async () => {
      const [a] = await open();
      const model: Model = { users: new Map(), orders: new Map() };
      await seed(a, model);
      const before = kits[0]!.topology.ring;
      const load = workload(kits, model, 100_000);
      stopWorkload = load.stop;

      const rebalance = a.rebalance();
      const plan = await rebalance.start({ add: ['third'] });
      const after = await HashRing.create(plan.after);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      // Kill the backfill part-way and resume it from its checkpoints.
      const abort = new AbortController();
      const killed = await rebalance.phases
        .backfill({ batchSize: 20, signal: abort.signal, onProgress: (progress) => progress.copied >= 60 && abort.abort(new Error('killed')) })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(killed, 'the first backfill was killed').to.be.instanceOf(Error);
      const checkpoints = (await rebalance.status()).backfill;
      expect(checkpoints.some((unit) => unit.rows > 0 && !unit.done)).to.equal(true);
      await rebalance.phases.backfill({ batchSize: 200 });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      const report = await rebalance.phases.verify({ chunkSize: 300 });
      expect(report.unrepaired).to.equal(0);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await sleep(300);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      expect((await rebalance.status()).phase).to.equal('cutover');
      await sleep(500);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.cleanup();
      await sleep(300);
      await load.stop();
      stopWorkload = async () => {};

      expect(load.failures).to.deep.equal([]);
      const placed = await expectPlacedExactly(a, model, after);
      const movedFraction = placed.byShard.third! / placed.users;
      console.log(
        `      add: ${placed.users} users + ${placed.orders} orders checked, ${(movedFraction * 100).toFixed(1)}% on the new shard (ideal 33.3%), ${load.stats().reads} reads, ${load.stats().switchingRetries} writes retried at the switch`,
      );
      expect(movedFraction).to.be.closeTo(1 / 3, 0.05);
      expect(before.shardNames).to.not.include('third');

      // And back: remove the third shard; its rows go to the other two by the ring.
      const back = workload(kits, model, 500_000);
      stopWorkload = back.stop;
      const removal = await rebalance.start({ remove: ['third'] });
      for (const phase of ['dual_write', 'backfill', 'verify', 'shadow_read', 'cutover', 'cleanup'] as const) {
        if (phase === 'verify') await rebalance.phases.backfill();
        if (phase === 'shadow_read') expect((await rebalance.phases.verify()).unrepaired).to.equal(0);
        await rebalance.phases.advance({ waitForAcksMs: 5000 });
      }
      await rebalance.cleanup();
      await back.stop();
      stopWorkload = async () => {};
      expect(back.failures).to.deep.equal([]);
      const removed = await expectPlacedExactly(a, model, await HashRing.create(removal.after));
      console.log(`      remove: ${removed.users} users + ${removed.orders} orders checked, ${removed.byShard.third} left on the removed shard`);
      expect(removed.byShard.third).to.equal(0);
    });

    if (slotColumn) {
      it('lists only the moving keys, and moves rows written past the kit and a key changed past it by the slots it gives them first', async () => {
        const [a] = await open();
        const { model, before, rebalance, after } = await seededAddition(a);
        const primaryOf = (id: number) => a.topology.shard(before.shardFor(id)).primary.knex;
        const slotOfRow = async (id: number) => Number((await primaryOf(id)('users').where('id', id).first(slotColumn))?.[slotColumn] ?? Number.NaN);

        // Inserted past the kit: no slot.
        const pastKit = Array.from({ length: 40 }, (_, index) => 10_001 + index);
        for (const id of pastKit) {
          await primaryOf(id)('users').insert({ id, name: `Past ${id}`, email: `p${id}@example.com` });
          model.users.set(id, `Past ${id}`);
        }
        expect(await slotOfRow(pastKit[0]!)).to.be.NaN;
        // Keys changed, past the kit and through it, to keys the same shard owns now and the new one will: the trigger clears their slots.
        const [changedPast, changedByKit] = [...model.users.keys()].filter((id) => after.shardFor(id) === before.shardFor(id)) as [number, number];
        const newKeyFor = (old: number, from: number) => {
          for (let id = from; ; id++) if (before.shardFor(id) === before.shardFor(old) && after.shardFor(id) === 'third') return id;
        };
        const renamed: [number, number][] = [
          [changedPast, newKeyFor(changedPast, 20_001)],
          [changedByKit, newKeyFor(changedByKit, 30_001)],
        ];
        await primaryOf(changedPast)('users').where('id', changedPast).update({ id: renamed[0]![1] });
        await a.table('users').where('id', changedByKit).update({ id: renamed[1]![1] });
        for (const [old, id] of renamed) {
          model.users.set(id, model.users.get(old)!);
          model.users.delete(old);
          expect(await slotOfRow(id), 'a changed key has no slot until a rebalance gives it one').to.be.NaN;
        }

        // A wrong slot, past the kit (a row cloned with its slot, say): the slot walk cannot see it move, a walk of keys can.
        const wronged = [...model.users.keys()].find((id) => id < 10_000 && after.shardFor(id) === 'third' && !renamed.some(([old]) => old === id))!;
        const staying = [...model.users.keys()].find((id) => after.shardFor(id) === before.shardFor(id))!;
        await primaryOf(wronged)('users').where('id', wronged).update({ [slotColumn]: after.slotOf(staying) });
        // The reverse, past the kit too: a key that stays, holding the slot of one that moves. It lies in a run the move
        // marks, but its own hash keeps it where it is: never copied, and never deleted by cleanup.
        const strayInRun = [...model.users.keys()].find((id) => after.shardFor(id) === before.shardFor(id) && id !== staying)!;
        const movingBeside = [...model.users.keys()].find((id) => before.shardFor(id) === before.shardFor(strayInRun) && after.shardFor(id) === 'third' && id !== wronged)!;
        await primaryOf(strayInRun)('users').where('id', strayInRun).update({ [slotColumn]: after.slotOf(movingBeside) });
        // A key that moves, holding the slot of another moving key: listed by that slot, copied with its own.
        const movingMisslotted = [...model.users.keys()].find(
          (id) => before.shardFor(id) === before.shardFor(movingBeside) && after.shardFor(id) === 'third' && ![wronged, movingBeside].includes(id) && after.slotOf(id) !== after.slotOf(movingBeside),
        )!;
        await primaryOf(movingMisslotted)('users').where('id', movingMisslotted).update({ [slotColumn]: after.slotOf(movingBeside) });
        // A moving user's two orders (a composite key), one holding a staying user's slot past the kit: the key is listed by
        // the other, and both rows get its slot before the copy, or the new owner would show that one before cutover too.
        const orderOwner = [...model.users.keys()].find((id) => id < 10_000 && after.shardFor(id) === 'third' && ![wronged, movingBeside, movingMisslotted].includes(id))!;
        await primaryOf(orderOwner)('orders').where({ user_id: orderOwner, id: 1 }).update({ [slotColumn]: after.slotOf(staying) });
        const markersOf = async (marks: string) =>
          (await Promise.all(a.shardNames.map(async (shard) => Number(((await a.forShard(shard)(marks).where('tbl', 'users').count('* as n').first()) as { n: unknown }).n)))).reduce((sum, n) => sum + n, 0);

        const walked = new Map<string, number>();
        for (const phase of ['dual_write', 'backfill', 'verify', 'shadow_read', 'cutover', 'cleanup'] as const) {
          if (phase === 'verify') {
            await rebalance.phases.backfill({ onProgress: ({ shard, copied }) => walked.set(shard, copied) });
            // Marked by the runs of slots that move, written when the move started: no key was marked one by one.
            expect([await markersOf(MARKERS_TABLE) === 0, await markersOf(RUN_MARKERS_TABLE) > 0], 'key markers none, run markers some').to.deep.equal([true, true]);
          }
          if (phase === 'shadow_read') {
            const mixed = await a.topology.shard('third').primary.knex('orders').where({ user_id: orderOwner }).orderBy('id').select(slotColumn);
            expect(mixed.map((row) => Number(row[slotColumn])), 'both orders of the mixed key arrive with its slot').to.deep.equal([after.slotOf(orderOwner), after.slotOf(orderOwner)]);
            expect(Number(((await a.table('orders').count('* as n').first()) as { n: unknown }).n), 'orders counted once each through the kit').to.equal(model.orders.size);
            expect((await rebalance.phases.verify()).differences, 'by slots: the wrong slot goes unseen').to.equal(0);
            const byKeys = await rebalance.phases.verify({ walkKeys: true });
            expect([byKeys.differences, byKeys.repaired, byKeys.unrepaired], 'by keys').to.deep.equal([1, 1, 0]);
          }
          await rebalance.phases.advance({ waitForAcksMs: 5000 });
        }
        await rebalance.cleanup();
        await expectPlacedExactly(a, model, after);

        const movingUsers = [...model.users.keys()].filter((id) => after.shardFor(id) === 'third').length;
        const movingOrderKeys = new Set([...model.orders.keys()].map((key) => Number(key.split(':')[0])).filter((id) => after.shardFor(id) === 'third')).size;
        const listed = [...walked.values()].reduce((sum, count) => sum + count, 0);
        console.log(`      ${listed} keys listed for ${movingUsers} moving users (one with a wrong slot) and ${movingOrderKeys} moving order keys, of ${model.users.size} users`);
        // The row with a wrong slot outside the runs was not listed; the stray inside a run was.
        expect(listed).to.equal(movingUsers + movingOrderKeys - 1 + 1);
        expect(await primaryOf(strayInRun)('users').where('id', strayInRun).first('name'), 'the stray in a moving run stays').to.deep.equal({ name: model.users.get(strayInRun) });
        for (const id of [...pastKit, ...renamed.map(([, renamedTo]) => renamedTo), wronged, strayInRun, movingMisslotted]) {
          const row = await a.topology.shard(after.shardFor(id)).primary.knex('users').where('id', id).first(slotColumn);
          expect(Number(row?.[slotColumn]), `the slot of ${id}`).to.equal(after.slotOf(id));
        }
      });
    }

    it('carries writers that use transactions only through every phase, a rollback from cutover and a second cutover', async () => {
      const [a] = await open();
      const model: Model = { users: new Map(), orders: new Map() };
      await seed(a, model);
      const load = workload(kits, model, 100_000, 'transactions');
      stopWorkload = load.stop;
      const rebalance = a.rebalance();
      const plan = await rebalance.start({ add: ['third'] });
      for (const phase of ['dual_write', 'backfill', 'verify', 'shadow_read', 'cutover'] as const) {
        if (phase === 'verify') await rebalance.phases.backfill({ batchSize: 200 });
        if (phase === 'shadow_read') expect((await rebalance.phases.verify()).unrepaired).to.equal(0);
        await rebalance.phases.advance({ waitForAcksMs: 5000 });
        await sleep(200);
      }
      await rebalance.phases.rollback({ waitForAcksMs: 5000 });
      expect((await rebalance.status()).phase).to.equal('shadow_read');
      await sleep(300);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await sleep(300);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.cleanup();
      await load.stop();
      stopWorkload = async () => {};
      expect(load.failures).to.deep.equal([]);
      const placed = await expectPlacedExactly(a, model, await HashRing.create(plan.after));
      console.log(`      transactions only: ${placed.users} users + ${placed.orders} orders checked, ${load.stats().switchingRetries} transactions retried at the switches`);
    });

    it('keeps a write whose copy to the new owner failed in the sync outbox, and will not move on until it is applied', async () => {
      const [a] = await open();
      const model: Model = { users: new Map(), orders: new Map() };
      await seed(a, model);
      const rebalance = a.rebalance();
      const plan = await rebalance.start({ add: ['third'] });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      const after = await HashRing.create(plan.after);
      const id = [...model.users.keys()].find((candidate) => after.shardFor(candidate) === 'third')!;
      const third = a.forShard('third');
      await refuseWrites(third, target.name, 'users');
      try {
        await a.transaction(id, async (trx) => {
          await trx.table('users').where('id', id).update({ name: 'Acknowledged' });
        });
        expect(a.migrationCoordinator.stats.syncFailures, 'the copy after the commit failed').to.be.greaterThan(0);
        expect((await rebalance.status()).outbox).to.be.greaterThan(0);
        const refused = await rebalance.phases.advance({ waitForAcksMs: 5000 }).catch((error: unknown) => error);
        expect(refused).to.be.instanceOf(MigrationGateError);
        expect(String((refused as Error).message)).to.include('sync outbox');
      } finally {
        await allowWrites(third, target.name, 'users');
      }
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      expect((await rebalance.status()).phase).to.equal('backfill');
      expect(await third('users').where('id', id).first('name')).to.deep.equal({ name: 'Acknowledged' });
      expect((await rebalance.status()).outbox).to.equal(0);
    });

    it('counts a shadow-read difference only once no copy is pending for its key, and then at once', async () => {
      const [a] = await open();
      const { model, before, rebalance, after } = await seededAddition(a);
      for (const phase of ['dual_write', 'backfill', 'verify', 'shadow_read'] as const) {
        if (phase === 'verify') await rebalance.phases.backfill({ batchSize: 200 });
        if (phase === 'shadow_read') expect((await rebalance.phases.verify()).unrepaired).to.equal(0);
        await rebalance.phases.advance({ waitForAcksMs: 5000 });
      }
      const id = [...model.users.keys()].find((candidate) => after.shardFor(candidate) === 'third')!;
      const { migrationCoordinator: coordinator } = a;
      const { tables } = coordinator.involvement('users').find((involved) => involved.side === 'source')!;
      // The comparison itself, as a sampled read starts it, with a short wait for pending copies.
      const { databases } = coordinator as unknown as { databases: ShardDatabases };
      const oldOwner = a.topology.shard(before.shardFor(id)).primary.knex;
      const compare = async (settleMs: number) => shadowCompare(databases, tables, coordinator.store, 0, await oldOwner('users').where('id', id), settleMs);

      const third = a.forShard('third');
      await refuseWrites(third, target.name, 'users');
      try {
        await a.table('users').where('id', id).update({ name: 'Copy pending' });
        expect(coordinator.stats.syncFailures, 'the copy after the commit failed').to.be.greaterThan(0);
        const started = performance.now();
        expect(await compare(400), 'the new owner differs while the outbox names the key').to.deep.equal({ compared: 1, mismatches: 0 });
        expect(performance.now() - started, 'it waited for the copy, about its bound').to.be.within(350, 5000);
      } finally {
        await allowWrites(third, target.name, 'users');
      }
      // The instance drains what failed at its next poll; then a difference nothing explains counts at once.
      const drained = performance.now() + 10_000;
      while ((await rebalance.status()).outbox > 0 && performance.now() < drained) await sleep(100);
      expect(await third('users').where('id', id).first('name')).to.deep.equal({ name: 'Copy pending' });
      expect(await compare(400), 'equal again').to.deep.equal({ compared: 1, mismatches: 0 });
      await a.topology.shard('third').primary.knex('users').where('id', id).update({ name: 'Corrupted past the kit' });
      const started = performance.now();
      expect(await compare(10_000)).to.deep.equal({ compared: 1, mismatches: 1 });
      expect(performance.now() - started, 'nothing pending: no wait').to.be.below(2000);
      const recorded = await coordinator.store.mismatchesSince(tables.migration.name, 0);
      expect(recorded.map((mismatch) => mismatch.detail)).to.deep.equal(['name: "Copy pending" -> "Corrupted past the kit"']);
    });

    it('never overwrites a row the new owner already holds, and copies the rest of its batch', async () => {
      const [a] = await open();
      const { model, rebalance, after } = await seededAddition(a);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      // What a dual write puts there before the backfill reaches its batch: a newer row.
      const moving = [...model.users.keys()].filter((id) => after.shardFor(id) === 'third');
      const newer = moving[Math.floor(moving.length / 2)]!;
      const third = a.topology.shard('third').primary.knex;
      await third('users').insert({ id: newer, name: 'newer, on the new owner', email: 'newer@example.com' });
      await rebalance.phases.backfill();
      expect(await third('users').where('id', newer).first('name')).to.deep.equal({ name: 'newer, on the new owner' });
      const copied = (await third('users').whereIn('id', moving).select('id')) as { id: unknown }[];
      expect(copied.length, 'every moving user is on the new owner').to.equal(moving.length);
    });

    it('verifies the moved rows by checksums on the servers, reading rows only where a chunk differs, and repairs every difference', async () => {
      const [a] = await open();
      const { model, before, rebalance, after } = await seededAddition(a);
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.backfill();
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      expect((await rebalance.status()).phase).to.equal('verify');

      const moved = [...model.users.keys()].filter((id) => after.shardFor(id) === 'third');
      // The copies keep what a JavaScript Date cannot hold: now()'s microseconds on PostgreSQL.
      const isPostgres = a.config.family === 'postgres';
      const timestampText = async (knex: Knex, id: number) =>
        (await knex('users').where('id', id).first(knex.raw(isPostgres ? 'created_at::text as t' : 'cast(created_at as char) as t'))).t as string;
      const exact = moved[moved.length - 1]!;
      const [sourceText, copyText] = await Promise.all([
        timestampText(a.topology.shard(before.shardFor(exact)).primary.knex, exact),
        timestampText(a.topology.shard('third').primary.knex, exact),
      ]);
      if (isPostgres) expect(sourceText).to.match(/\.\d{4,6}/);
      expect(copyText).to.equal(sourceText);

      // Past the kit: a changed copy, a missing copy, a missing order copy, and a copy whose source row is gone.
      const [changed, missing, missingOrder, orphaned] = moved as [number, number, number, number];
      const third = a.topology.shard('third').primary.knex;
      await third('users').where('id', changed).update({ name: 'changed past the kit' });
      await third('users').where('id', missing).delete();
      await third('orders').where({ user_id: missingOrder, id: 1 }).delete();
      await a.topology.shard(before.shardFor(orphaned)).primary.knex('users').where('id', orphaned).delete();

      // Rows that reach Node: what full-row selects on the moving tables return during verify.
      let rowsRead = 0;
      const countRows = (response: unknown, query: { sql?: string }) => {
        if (/^select \* from [`"](users|orders)[`"]/i.test(query.sql ?? '') && Array.isArray(response)) rowsRead += response.length;
      };
      for (const shard of a.topology.shards) shard.primary.knex.on('query-response', countRows);
      const report = await rebalance.phases.verify({ chunkSize: 50 });
      for (const shard of a.topology.shards) shard.primary.knex.off('query-response', countRows);

      const movedOrders = [...model.orders.keys()].filter((key) => after.shardFor(Number(key.split(':')[0])) === 'third').length;
      console.log(`      verify: ${report.rowsChecked} moved rows compared on the servers, ${rowsRead} rows read into Node, ${report.differences} differences, ${report.repaired} repaired`);
      expect(report.differences).to.equal(4);
      expect(report.repaired).to.equal(4);
      expect(report.unrepaired).to.equal(0);
      // Every source row of a moved key, except the one deleted past the kit.
      expect(report.rowsChecked).to.equal(moved.length - 1 + movedOrders);
      expect(rowsRead, 'only the chunks that differ are read').to.be.greaterThan(0).and.below(report.rowsChecked / 2);

      rowsRead = 0;
      for (const shard of a.topology.shards) shard.primary.knex.on('query-response', countRows);
      const again = await rebalance.phases.verify({ chunkSize: 50 });
      for (const shard of a.topology.shards) shard.primary.knex.off('query-response', countRows);
      expect([again.differences, again.unrepaired]).to.deep.equal([0, 0]);
      expect(rowsRead, 'a verify that finds nothing reads no row into Node').to.equal(0);
      const copies = await third('users').whereIn('id', [changed, missing, orphaned]).orderBy('id');
      model.users.delete(orphaned);
      expect(copies.map((row: { id: unknown; name: unknown }) => [Number(row.id), row.name])).to.deep.equal(
        [changed, missing].sort((x, y) => x - y).map((id) => [id, model.users.get(id)]),
      );
      expect(await third('orders').where({ user_id: missingOrder, id: 1 }).first()).to.not.equal(undefined);
    });

    it('copies a key with more rows than a page in pages, never holding them all, and verify finds one changed row among them', async () => {
      const [a] = await open();
      const model: Model = { users: new Map(), orders: new Map() };
      await seed(a, model);
      const rebalance = a.rebalance();
      const plan = await rebalance.start({ add: ['third'] });
      const after = await HashRing.create(plan.after);
      // One moving user with 12,001 orders: more than two pages of moving rows (5,000).
      const heavy = [...model.users.keys()].find((id) => after.shardFor(id) === 'third')!;
      const ORDERS = 12_001;
      await a.table('orders').where('user_id', heavy).delete();
      for (let first = 1; first <= ORDERS; first += 1000) {
        const ids = Array.from({ length: Math.min(1000, ORDERS - first + 1) }, (_, index) => first + index);
        await a.table('orders').insert(ids.map((id) => ({ user_id: heavy, id, amount_cents: id })));
      }
      let largestRead = 0;
      const measure = (response: unknown, query: { sql?: string }) => {
        if (/^select \* from [`"]orders[`"]/i.test(query.sql ?? '') && Array.isArray(response)) largestRead = Math.max(largestRead, response.length);
      };
      // Before rows are copied by key, their keys are marked (key walk) or restamped (slot column) once each per
      // statement, not once per row: a page of the heavy user's orders would name its key 5,000 times.
      let keyStatements = 0;
      let statementsRepeatingAKey = 0;
      const keysOnce = (query: { sql?: string; bindings?: readonly unknown[] }) => {
        const sql = query.sql ?? '';
        const bindings = query.bindings ?? [];
        let keys: unknown[] | undefined;
        if (/^update \S+ as t join \(select \? as k/i.test(sql)) keys = bindings.slice(1, -3).filter((_, index) => index % 2 === 0);
        const markers = new RegExp(`^insert .*${MARKERS_TABLE}[\`"]? \\(([^)]*)\\)`, 'i').exec(sql);
        if (markers) {
          const columns = markers[1]!.split(',').map((column) => column.trim().replace(/[`"]/g, ''));
          const [dir, k] = [columns.indexOf('dir'), columns.indexOf('k')];
          keys = [];
          for (let row = 0; row < bindings.length / columns.length; row++) keys.push(`${bindings[row * columns.length + dir]}:${bindings[row * columns.length + k]}`);
        }
        if (!keys) return;
        keyStatements++;
        if (new Set(keys.map(String)).size !== keys.length) statementsRepeatingAKey++;
      };
      for (const shard of a.topology.shards) {
        shard.primary.knex.on('query-response', measure);
        shard.primary.knex.on('query', keysOnce);
      }
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.backfill();
      for (const shard of a.topology.shards) {
        shard.primary.knex.off('query-response', measure);
        shard.primary.knex.off('query', keysOnce);
      }
      // PostgreSQL streams the moving keys' rows (COPY), deduplicated before; MariaDB copies them page by page.
      if (a.config.family === 'mysql') expect([keyStatements > 0, statementsRepeatingAKey], 'statements marking or restamping keys, and those naming one twice').to.deep.equal([true, 0]);
      const third = a.topology.shard('third').primary.knex;
      const copied = await third('orders').where('user_id', heavy).count('* as n').first();
      console.log(`      ${Number(copied?.n)} orders of one user copied, at most ${largestRead} rows in one read`);
      expect(Number(copied?.n)).to.equal(ORDERS);
      // PostgreSQL streams the rows from server to server (COPY), none read into Node; MariaDB reads them in pages.
      if (a.config.family === 'postgres') expect(largestRead, 'rows read into Node').to.equal(0);
      else expect(largestRead).to.be.greaterThan(0).and.at.most(5000);

      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await third('orders').where({ user_id: heavy, id: 777 }).update({ amount_cents: -1 });
      const report = await rebalance.phases.verify();
      expect([report.differences, report.repaired, report.unrepaired]).to.deep.equal([1, 1, 0]);
      expect(await third('orders').where({ user_id: heavy, id: 777 }).first('amount_cents')).to.satisfy((row: { amount_cents: unknown }) => Number(row.amount_cents) === 777);
    });

    it('rolls back from cutover to the old topology with every write, and removes the copies', async () => {
      const [a, b] = await open();
      const model: Model = { users: new Map(), orders: new Map() };
      await seed(a, model);
      const rebalance = a.rebalance();
      const plan = await rebalance.start({ add: ['third'] });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.advance({ waitForAcksMs: 5000 });
      await rebalance.phases.backfill();
      for (let step = 0; step < 3; step++) {
        if (step === 1) expect((await rebalance.phases.verify()).unrepaired).to.equal(0);
        await rebalance.phases.advance({ waitForAcksMs: 5000 });
      }
      expect((await rebalance.status()).phase).to.equal('cutover');
      // Writes at the new owners during cutover, then back.
      const after = await HashRing.create(plan.after);
      const moving = [...model.users.keys()].filter((id) => after.shardFor(id) === 'third').slice(0, 20);
      for (const id of moving) {
        await retryingSwitch(() => b.table('users').where('id', id).update({ name: `Cutover ${id}` }));
        model.users.set(id, `Cutover ${id}`);
      }
      // A key changed through the kit at the new owner (a slot column's trigger leaves that row without a slot).
      const [renamedFrom] = moving as [number];
      let renamedTo = 50_001;
      while (after.shardFor(renamedTo) !== 'third') renamedTo++;
      await retryingSwitch(() => b.table('users').where('id', renamedFrom).update({ id: renamedTo }));
      model.users.set(renamedTo, model.users.get(renamedFrom)!);
      model.users.delete(renamedFrom);
      // An order's own id (part of its primary key, not the shard key) set to an expression: PostgreSQL returns the new
      // key; MySQL cannot tell it before the statement runs, and refuses rather than miss its copy.
      const [, owner] = moving as [number, number];
      const byExpression = retryingSwitch(() => b.table('orders').where({ user_id: owner, id: 2 }).update({ id: b.forShard('third').raw('?? + 10', ['id']) }));
      if (a.config.family === 'mysql') expect(await byExpression.then(() => 'carried', (error: { code?: string }) => error.code)).to.equal('MIGRATION_PHASE');
      else {
        await byExpression;
        model.orders.set(`${owner}:12`, model.orders.get(`${owner}:2`)!);
        model.orders.delete(`${owner}:2`);
      }
      expect([a, b].map((kit) => kit.migrationCoordinator.stats.syncFailures), 'dual-write syncs that failed').to.deep.equal([0, 0]);
      await rebalance.phases.rollback({ waitForAcksMs: 5000 });
      expect((await rebalance.status()).phase).to.equal('shadow_read');
      const old = await HashRing.create(plan.before);
      for (const id of moving.slice(1)) expect(await b.table('users').where('id', id).first('name')).to.deep.equal({ name: `Cutover ${id}` });
      expect(await b.table('users').where('id', renamedTo).first('name')).to.deep.equal({ name: `Cutover ${renamedFrom}` });
      for (let step = 0; step < 4; step++) await rebalance.phases.rollback({ waitForAcksMs: 5000 });
      expect((await rebalance.status()).phase).to.equal('pending');
      await rebalance.abort({ waitForAcksMs: 5000 });
      await expectPlacedExactly(a, model, old);
      expect(await a.forShard('third')('users').count('* as n').first()).to.satisfy((row: { n: unknown }) => Number(row.n) === 0);
    });

    it('reweights a shard: rows move only to it, and every row ends on its owner', async () => {
      const [a] = await open();
      const model: Model = { users: new Map(), orders: new Map() };
      await seed(a, model);
      const [, heavier] = a.topology.ring.shardNames as [string, string];
      const rebalance = a.rebalance();
      const plan = await rebalance.start({ weights: { [heavier]: 2 } });
      expect(plan.tables.flatMap((table) => table.flows).every((flow) => flow.to === heavier)).to.equal(true);
      for (const step of ['dual_write', 'backfill', 'verify', 'shadow_read', 'cutover', 'cleanup']) {
        if (step === 'verify') await rebalance.phases.backfill();
        if (step === 'shadow_read') expect((await rebalance.phases.verify()).unrepaired).to.equal(0);
        await rebalance.phases.advance({ waitForAcksMs: 5000 });
      }
      await rebalance.cleanup();
      const placed = await expectPlacedExactly(a, model, await HashRing.create(plan.after));
      // Weight 2 of 3: about two thirds of the rows.
      expect(placed.byShard[heavier]! / placed.users).to.be.closeTo(2 / 3, 0.05);
    });

    if (slotColumn) {
      it('marks the runs of a new move only once every live instance has left the last one, which would hide rows by them', async () => {
        const [a] = await open();
        const { rebalance } = await seededAddition(a);
        await rebalance.abort({ waitForAcksMs: 5000 });
        const runMarkers = async () => (await Promise.all(a.shardNames.map((shard) => a.forShard(shard)(RUN_MARKERS_TABLE).count('* as n').first()))).reduce((sum, row) => sum + Number((row as { n: unknown }).n), 0);
        expect(await runMarkers(), 'the abort cleared the runs').to.equal(0);
        // An instance alive (its lease runs) that still applies an older version of the rebalance.
        const control = a.forShard(a.config.migrations.controlShard);
        await control(ACKS_TABLE).insert({ migration: REBALANCE_NAME, instance: 'lagging-instance', version: 0, lease_until: Date.now() + 60_000 });
        try {
          const refused = await rebalance.start({ add: ['third'] }, { waitForAcksMs: 1000 }).catch((error: unknown) => error);
          expect(refused).to.be.instanceOf(MigrationGateError);
          expect((refused as MigrationGateError).reasons.join()).to.match(/instance lagging-instance still applies version 0/);
          expect(await runMarkers(), 'no run marked while it lags').to.equal(0);
        } finally {
          await control(ACKS_TABLE).where({ migration: REBALANCE_NAME, instance: 'lagging-instance' }).delete();
        }
        await rebalance.start({ add: ['third'] });
        expect(await runMarkers()).to.be.greaterThan(0);
      });

      it('refuses cleanup and abort by an instance whose config lacks the slot column, which would leave every copy behind', async () => {
        const [a] = await open();
        const { model, rebalance, after } = await seededAddition(a);
        const withoutSlots = await createShardKit({ ...config, tables: { ...config.tables, users: { shardKey: 'id' }, orders: { shardKey: 'user_id' } } });
        try {
          for (const step of ['dual_write', 'backfill', 'verify', 'shadow_read', 'cutover', 'cleanup']) {
            if (step === 'verify') await rebalance.phases.backfill();
            if (step === 'shadow_read') expect((await rebalance.phases.verify()).unrepaired).to.equal(0);
            await rebalance.phases.advance({ waitForAcksMs: 5000 });
          }
          const refused = await withoutSlots.rebalance().cleanup({ waitForAcksMs: 5000 }).catch((error: unknown) => error);
          expect(refused).to.be.instanceOf(MigrationGateError);
          expect((refused as MigrationGateError).reasons.join()).to.contain('users was marked by slot runs: run it with tables.users.slotColumn in the config');
          expect((await rebalance.status()).cleaned, 'nothing recorded as cleaned').to.equal(false);
          await rebalance.cleanup({ waitForAcksMs: 5000 });
          await expectPlacedExactly(a, model, after);
        } finally {
          await withoutSlots.close();
        }
      });
    }

    it('refuses what it cannot do safely: a second start, an unknown shard, cutover before the backfill', async () => {
      const [a] = await open();
      const rebalance = a.rebalance();
      await rebalance.start({ add: ['third'] });
      const again = await rebalance.start({ add: ['third'] }).catch((error: unknown) => error);
      expect(again).to.be.instanceOf(MigrationGateError);
      const early = await rebalance.phases
        .advance({ waitForAcksMs: 5000 })
        .then(() => rebalance.phases.advance({ waitForAcksMs: 5000 }))
        .then(() => rebalance.phases.advance({ waitForAcksMs: 5000 }))
        .catch((error: unknown) => error);
      expect((early as MigrationGateError).reasons.join()).to.match(/backfill is not done/);
      const unknown = await a.rebalance().plan({ add: ['nowhere'] }).catch((error: unknown) => error);
      expect(unknown).to.have.property('code', 'INVALID_TOPOLOGY_CHANGE');
    });
  });
}
