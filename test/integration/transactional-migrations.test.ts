import { expect } from 'chai';
import { MigrationGateError, type ShardKit, ShardKitError } from '../../lib/index.js';
import { canonical } from '../../lib/migrations/online/row-identity.js';
import { allRows, divergence, migrationKits, user } from '../support/online-migration-kits.js';
import { allowWrites, refuseWrites } from '../support/refuse-writes.js';
import { TARGETS } from '../support/targets.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SEEDED = 600;

/** The primary owning `id`, written as another program would: past the kit and its checks. */
const behindTheKit = (kit: ShardKit, id: number) => kit.topology.ownerOf(id).primary.knex;

/** users -> users_v2 up to `phase`, with its backfill and verify. */
async function migrateTo(kit: ShardKit, phase: 'shadow_read' | 'cutover'): Promise<void> {
  const runner = kit.onlineMigration('users_v2');
  await runner.start();
  await runner.advance({ waitForAcksMs: 5000 });
  await runner.backfill({ batchSize: 200 });
  await runner.advance({ waitForAcksMs: 5000 });
  expect((await runner.verify()).unrepaired).to.equal(0);
  await runner.advance({ waitForAcksMs: 5000 });
  if (phase === 'cutover') await runner.advance({ waitForAcksMs: 5000 });
  expect((await runner.status()).phase).to.equal(phase);
}

/**
 * Repository-style writers that use routed transactions only, each owning the ids equal to its
 * number modulo the writer count, so that the expected names (the model; undefined = deleted)
 * are exact. Until cutover they write users; in cutover every other transaction writes users_v2.
 */
function transactionalWriters(kits: ShardKit[], model: Map<number, string | undefined>) {
  let running = true;
  let cutover = false;
  let committed = 0;
  const failures: unknown[] = [];
  const writer = async (index: number, count: number) => {
    const kit = kits[index % kits.length]!;
    let next = 100_000 + index;
    for (let step = 1; running; step++) {
      const mine = [...model].filter(([id, name]) => id % count === index && name !== undefined).map(([id]) => id);
      const id = mine[(step * 7919) % mine.length]!;
      const throughTarget = cutover && step % 2 === 0;
      try {
        if (step % 5 === 0) {
          const created = next;
          next += count;
          await kit.transaction(created, async (trx) => {
            await trx.table('users').insert(user(created));
            await trx.table('users').where('id', created).update({ name: `Created ${step}` });
          });
          model.set(created, `Created ${step}`);
        } else if (step % 13 === 0) {
          await kit.transaction(id, async (trx) => {
            const table = throughTarget ? 'users_v2' : 'users';
            expect(await trx.table(table).where('id', id).first('id')).to.not.equal(undefined);
            await trx.table(table).where('id', id).del();
          });
          model.set(id, undefined);
        } else {
          await kit.transaction(id, async (trx) => {
            if (throughTarget) await trx.table('users_v2').where('id', id).update({ first_name: 'Target', last_name: `${step}` });
            else await trx.table('users').where('id', id).update({ name: `Source ${step}` });
            await trx.transaction(async (savepoint) => {
              await savepoint.table(throughTarget ? 'users_v2' : 'users').where('id', id).update({ email: 'rolled@back' });
              throw new Error('roll back the savepoint');
            }).catch(() => undefined);
          });
          model.set(id, throughTarget ? `Target ${step}` : `Source ${step}`);
        }
        committed++;
      } catch (error) {
        failures.push(error);
      }
      await sleep(2);
    }
  };
  const tasks = Array.from({ length: 4 }, (_, index) => writer(index, 4));
  return {
    failures,
    committed: () => committed,
    enterCutover: () => {
      cutover = true;
    },
    stop: async () => {
      running = false;
      await Promise.all(tasks);
    },
  };
}

/** Every name of the model is in users, and only those: users_v2 must then equal transform(users). */
async function expectModel(kit: ShardKit, model: Map<number, string | undefined>): Promise<number> {
  const source = await allRows(kit, 'users');
  const wrong = [...model].filter(([id, name]) => source.get(canonical(id))?.name !== name && !(name === undefined && !source.has(canonical(id))));
  expect(wrong.slice(0, 5), `${wrong.length} rows differ from the acknowledged writes`).to.deep.equal([]);
  expect(source.size).to.equal([...model.values()].filter((name) => name !== undefined).length);
  expect([...source.values()].filter((row) => row.email === 'rolled@back'), 'a rolled-back savepoint').to.deep.equal([]);
  return source.size;
}

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`transactions through an online migration on ${target.name}`, function () {
    this.timeout(180_000);
    let kits: ShardKit[] = [];
    let stopWriters = async () => {};

    afterEach(async () => {
      await stopWriters();
      stopWriters = async () => {};
      await Promise.all(kits.map((kit) => kit.close()));
      kits = [];
    });

    it('carries transactions from two instances through every phase and a rollback from cutover, losing no acknowledged write', async () => {
      kits = await migrationKits(target.config, 2);
      const [a] = kits as [ShardKit, ShardKit];
      const model = new Map<number, string | undefined>();
      await a.table('users').insert(Array.from({ length: SEEDED }, (_, index) => user(index + 1)));
      for (let id = 1; id <= SEEDED; id++) model.set(id, user(id).name);
      const writers = transactionalWriters(kits, model);
      stopWriters = writers.stop;

      await migrateTo(a, 'cutover');
      writers.enterCutover();
      await sleep(800);
      const runner = a.onlineMigration('users_v2');
      await runner.rollback({ waitForAcksMs: 5000 });
      await writers.stop();
      stopWriters = async () => {};
      // Back in shadow_read the source is the application's table: it holds every transaction.
      const rows = await expectModel(a, model);
      const { differences } = await divergence(a);
      expect(differences.slice(0, 5)).to.deep.equal([]);
      const refused = writers.failures.filter((error) => !(error instanceof ShardKitError && error.code === 'MIGRATION_PHASE'));
      console.log(`      ${writers.committed()} transactions committed, ${writers.failures.length - refused.length} refused by the rollback; ${rows} rows equal the model, ${differences.length} differences`);
      expect(refused).to.deep.equal([]);

      await runner.advance({ waitForAcksMs: 5000 });
      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('cleanup');
      const migrated = await allRows(a, 'users_v2');
      expect([...model].filter(([id, name]) => name !== undefined && !migrated.has(canonical(id)))).to.deep.equal([]);
    });

    it('closes the cutover race: two instances appending to one row through both tables at once lose neither append', async () => {
      kits = await migrationKits(target.config, 2);
      const [a, b] = kits as [ShardKit, ShardKit];
      await a.table('users').insert(Array.from({ length: 100 }, (_, index) => ({ ...user(index + 1), email: '' })));
      await migrateTo(a, 'cutover');
      await b.migrationCoordinator.refresh();
      // A read-modify-write on each side: if one copy overwrote the other's commit, an append is gone.
      const append = (kit: ShardKit, id: number, token: string) => kit.forKey(id).raw('concat(email, cast(? as varchar(20)))', [token]);
      const lost: string[] = [];
      let pairs = 0;
      for (let round = 0; round < 60; round++) {
        const ids = [1, 2, 3, 4, 5].map((offset) => ((round * 5 + offset) % 100) + 1);
        await Promise.all(
          ids.flatMap((id) => [
            a.transaction(id, (trx) => trx.table('users').where('id', id).update({ email: append(a, id, ` s${round}`) }), { retries: 3 }),
            b.transaction(id, (trx) => trx.table('users_v2').where('id', id).update({ email: append(b, id, ` t${round}`) }), { retries: 3 }),
          ]),
        );
        const [source, migrated] = await Promise.all([allRows(a, 'users'), allRows(a, 'users_v2')]);
        for (const id of ids) {
          const [left, right] = [source, migrated].map((rows) => String(rows.get(canonical(id))!.email)) as [string, string];
          if (left !== right) lost.push(`${id}: users has "${left}", users_v2 "${right}"`);
          for (const token of [` s${round}`, ` t${round}`]) if (!left.includes(token)) lost.push(`${id}: lost${token}`);
          pairs++;
        }
      }
      console.log(`      ${pairs} pairs of concurrent transactions through both tables, ${lost.length} appends lost or tables unequal`);
      expect(lost.slice(0, 5)).to.deep.equal([]);
    });

    it('fails a write whose copy back to the source fails, instead of acknowledging it; verify in cutover repairs from the target', async () => {
      kits = await migrationKits(target.config, 1);
      const [kit] = kits as [ShardKit];
      await kit.table('users').insert(Array.from({ length: 50 }, (_, index) => user(index + 1)));
      await migrateTo(kit, 'cutover');
      const owner = kit.topology.ownerOf(7).name;
      await refuseWrites(kit.forShard(owner), target.name, 'users');
      try {
        const throughTrx = await kit
          .transaction(7, (trx) => trx.table('users_v2').where('id', 7).update({ first_name: 'Never', last_name: 'Acknowledged' }))
          .catch((error: unknown) => error);
        expect(throughTrx).to.be.instanceOf(ShardKitError);
        const throughTable = await kit.table('users_v2').where('id', 7).update({ first_name: 'Never', last_name: 'Either' }).catch((error: unknown) => error);
        expect(throughTable).to.be.instanceOf(ShardKitError);
      } finally {
        await allowWrites(kit.forShard(owner), target.name, 'users');
      }
      expect(await kit.table('users_v2').where('id', 7).first('first_name')).to.deep.equal({ first_name: 'First7' });
      expect((await divergence(kit)).differences).to.deep.equal([]);

      // A source row changed behind the kit's back: in cutover the target is what the application
      // wrote, so verify copies it back to the source, never the other way.
      await kit.table('users_v2').where('id', 8).update({ first_name: 'Newer', last_name: 'Write' });
      await behindTheKit(kit, 8)('users').where('id', 8).update({ name: 'Stale Copy' });
      const report = await kit.onlineMigration('users_v2').verify();
      expect(report.repaired).to.equal(1);
      expect(await kit.table('users_v2').where('id', 8).first('first_name', 'last_name')).to.deep.equal({ first_name: 'Newer', last_name: 'Write' });
      expect(await kit.table('users').where('id', 8).first('name')).to.deep.equal({ name: 'Newer Write' });
    });

    it('refuses writes through kit.forKey()/kit.forShard() to the migrating tables, which would not be dual-written', async () => {
      kits = await migrationKits(target.config, 1);
      const [kit] = kits as [ShardKit];
      await kit.table('users').insert(Array.from({ length: 10 }, (_, index) => user(index + 1)));
      const owner = kit.topology.ownerOf(3).name;
      expect(await kit.forKey(3)('users').where('id', 3).update({ name: 'Before Start' }), 'pending: nothing to carry').to.equal(1);
      await kit.onlineMigration('users_v2').start();
      const refusals = await Promise.all([
        kit.forKey(3)('users').where('id', 3).update({ name: 'Missed' }),
        kit.forShard(owner)('users').insert(user(1003)),
        kit.forShard(owner).raw('delete from users where id = ?', [3]),
        kit.forKey(3).transaction((trx) => trx('users').where('id', 3).del()),
        // A streamed statement passes the same check.
        (async () => {
          for await (const row of kit.forShard(owner).raw('delete from users where id = ? returning id', [3]).stream() as AsyncIterable<unknown>) void row;
        })(),
      ].map((write) => Promise.resolve(write).then(() => 'ran', (error: unknown) => (error as ShardKitError).code)));
      expect(refusals).to.deep.equal(['MIGRATION_PHASE', 'MIGRATION_PHASE', 'MIGRATION_PHASE', 'MIGRATION_PHASE', 'MIGRATION_PHASE']);
      // Reads, and writes of tables nothing moves, run as before.
      expect(await kit.forKey(3)('users').where('id', 3).first('name')).to.deep.equal({ name: 'Before Start' });
      await kit.forKey(3)('orders').insert({ user_id: 3, id: 1, amount_cents: 5 });
      expect(await kit.forKey(3)('orders').where('user_id', 3).delete()).to.equal(1);
      expect(await kit.table('users').where('id', 1003).first(), 'the refused insert did not run').to.equal(undefined);
    });

    it('clears shadow-read mismatches with a verify that repairs them, as the runbook says', async () => {
      kits = await migrationKits(target.config, 1, { sampleRate: 1 });
      const [kit] = kits as [ShardKit];
      await kit.table('users').insert(Array.from({ length: 50 }, (_, index) => user(index + 1)));
      await migrateTo(kit, 'shadow_read');
      await behindTheKit(kit, 9)('users_v2').where('id', 9).update({ first_name: 'Drifted' });
      await kit.table('users').where('id', 9);
      await kit.migrationCoordinator.settle();
      const runner = kit.onlineMigration('users_v2');
      expect((await runner.status()).shadowMismatches).to.equal(1);
      const refused = await runner.advance({ waitForAcksMs: 5000 }).catch((error: unknown) => error);
      expect(refused).to.be.instanceOf(MigrationGateError);
      await sleep(5);
      expect((await runner.verify()).repaired).to.equal(1);
      expect((await runner.status()).shadowMismatches).to.equal(0);
      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('cutover');
    });
  });
}
