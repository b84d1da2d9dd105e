import { expect } from 'chai';
import {
  createShardKit,
  MigrationGateError,
  MigrationLockedError,
  MigrationPhaseError,
  type ShardKit,
} from '../../lib/index.js';
import { canonical } from '../../lib/migrations/online/row-identity.js';
import { usersV2 } from '../../migrations/online/users-v2.js';
import { allRows, divergence, migrationKits, user } from '../support/online-migration-kits.js';
import { TARGETS } from '../support/targets.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`online migration users -> users_v2 on ${target.name}`, function () {
    this.timeout(180_000);
    let kits: ShardKit[] = [];
    // A failed assertion leaves the workload running; it must stop before its kits close.
    let stopWorkload = async () => {};

    afterEach(async () => {
      await stopWorkload();
      stopWorkload = async () => {};
      await Promise.all(kits.map((kit) => kit.close()));
      kits = [];
    });

    it('runs every phase under a concurrent workload, survives a killed backfill, and loses no write', async () => {
      kits = await migrationKits(target.config, 2);
      const [a, b] = kits as [ShardKit, ShardKit];
      for (let start = 1; start <= 3000; start += 500) await a.table('users').insert(Array.from({ length: 500 }, (_, index) => user(start + index)));

      // Four writers on two instances: inserts of new ids, renames, deletes. They write users until
      // cutover, then users_v2, as an application deploying its new version would.
      let writing: 'users' | 'users_v2' = 'users';
      let running = true;
      let nextId = 100_000;
      const deleted = new Set<number>();
      let operations = 0;
      const failures: unknown[] = [];
      const writer = async (kit: ShardKit, seed: number) => {
        let state = seed;
        const random = () => {
          state = (state * 1103515245 + 12345) % 2147483648;
          return state / 2147483648;
        };
        while (running) {
          const id = 1 + Math.floor(random() * 3000);
          const choice = random();
          try {
            if (writing === 'users') {
              if (choice < 0.3) await kit.table('users').insert(user(nextId++));
              else if (choice < 0.8) await kit.table('users').where('id', id).update({ name: `Renamed${operations} Person` });
              else if (!deleted.has(id)) {
                deleted.add(id);
                await kit.table('users').where('id', id).del();
              }
            } else if (choice < 0.5) {
              await kit.table('users_v2').where('id', id).update({ first_name: `Cut${operations}`, last_name: 'Over' });
            } else {
              await kit.table('users_v2').insert({ id: nextId++, first_name: 'New', last_name: 'Target', email: 'n@example.com' });
            }
            operations++;
          } catch (error) {
            failures.push(error);
          }
          await sleep(2);
        }
      };
      const writers = [writer(a, 1), writer(b, 2), writer(a, 3), writer(b, 4)];
      stopWorkload = async () => {
        running = false;
        await Promise.all(writers);
      };

      const runner = a.onlineMigration('users_v2');
      await runner.start();
      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('backfill');

      // Kill the backfill part-way, then resume it from its checkpoints.
      const abort = new AbortController();
      const killed = await runner
        .backfill({ batchSize: 100, onProgress: (progress) => progress.copied >= 300 && abort.abort(new Error('killed')), signal: abort.signal })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(killed, 'the first backfill was killed').to.be.instanceOf(Error);
      const afterKill = await runner.status();
      const copiedBeforeResume = afterKill.backfill.reduce((total, shard) => total + shard.rows, 0);
      expect(copiedBeforeResume).to.be.greaterThan(0);
      expect(afterKill.backfill.some((shard) => !shard.done)).to.equal(true);
      let resumedFrom = Number.POSITIVE_INFINITY;
      await runner.backfill({ batchSize: 200, onProgress: (progress) => (resumedFrom = Math.min(resumedFrom, progress.copied)) });
      expect(resumedFrom, 'the resumed backfill started past the checkpoint').to.be.greaterThan(0);

      await runner.advance({ waitForAcksMs: 5000 });
      const report = await runner.verify({ chunkSize: 250 });
      expect(report.unrepaired).to.equal(0);
      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('shadow_read');
      // b follows the new phase at its next poll; the reads below must come after it.
      await b.migrationCoordinator.refresh();
      for (let round = 0; round < 20; round++) await b.table('users').whereIn('id', [round * 7 + 1, round * 7 + 2, round * 7 + 3]);
      await Promise.all(kits.map((kit) => kit.migrationCoordinator.settle()));
      expect(b.migrationCoordinator.stats.shadowCompared).to.be.greaterThan(0);
      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('cutover');

      writing = 'users_v2';
      await sleep(1500);
      running = false;
      await Promise.all(writers);
      await Promise.all(kits.map((kit) => kit.migrationCoordinator.settle()));

      const { checked, differences } = await divergence(a);
      console.log(`      ${operations} concurrent writes; ${checked} rows compared, ${differences.length} differences; backfill resumed after ${copiedBeforeResume} rows`);
      expect(failures.filter((error) => !(error instanceof MigrationPhaseError))).to.deep.equal([]);
      expect(differences).to.deep.equal([]);
      const [source, migrated] = await Promise.all([allRows(a, 'users'), allRows(a, 'users_v2')]);
      for (const id of deleted) {
        expect(source.has(canonical(id)), `deleted ${id} came back in users`).to.equal(false);
        expect(migrated.has(canonical(id)), `deleted ${id} came back in users_v2`).to.equal(false);
      }

      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('cleanup');
      const error = await a.table('users').insert(user(999_999)).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(MigrationPhaseError);
      expect(await runner.cleanup({ dryRun: true })).to.satisfy((steps: string[]) => steps.every((step) => step.startsWith('would rename table users')));
    });

    it('rolls back from shadow_read and from cutover to a source holding every write', async () => {
      kits = await migrationKits(target.config, 1);
      const [kit] = kits as [ShardKit];
      await kit.table('users').insert(Array.from({ length: 200 }, (_, index) => user(index + 1)));
      const runner = kit.onlineMigration('users_v2');
      await runner.start();
      await runner.advance({ waitForAcksMs: 5000 });
      await runner.backfill();
      await runner.advance({ waitForAcksMs: 5000 });
      await runner.verify();
      await runner.advance({ waitForAcksMs: 5000 });
      await kit.table('users').where('id', 5).update({ name: 'During Shadow' });
      await runner.rollback();
      expect((await runner.status()).phase).to.equal('verify');
      expect((await divergence(kit)).differences).to.deep.equal([]);

      await runner.verify();
      await runner.advance({ waitForAcksMs: 5000 });
      await runner.advance({ waitForAcksMs: 5000 });
      expect((await runner.status()).phase).to.equal('cutover');
      await kit.table('users_v2').where('id', 6).update({ first_name: 'Written', last_name: 'Through Target' });
      await kit.table('users_v2').insert({ id: 5000, first_name: 'Only', last_name: 'Target', email: 'o@example.com' });
      await kit.table('users_v2').where('id', 7).del();
      await runner.rollback();
      expect((await runner.status()).phase).to.equal('shadow_read');

      const source = await allRows(kit, 'users');
      expect(source.get(canonical(6))).to.include({ name: 'Written Through Target' });
      expect(source.get(canonical(5000))).to.include({ name: 'Only Target' });
      expect(source.has(canonical(7))).to.equal(false);
      expect((await divergence(kit)).differences).to.deep.equal([]);
      const refused = await kit.table('users_v2').where('id', 6).update({ first_name: 'x' }).catch((caught: unknown) => caught);
      expect(refused).to.be.instanceOf(MigrationPhaseError);
    });

    it('keeps its gates: unrepaired differences, shadow mismatches, a held lock, an instance behind', async () => {
      kits = await migrationKits(target.config, 1);
      const [kit] = kits as [ShardKit];
      await kit.table('users').insert(Array.from({ length: 100 }, (_, index) => user(index + 1)));
      const runner = kit.onlineMigration('users_v2');
      await runner.start();
      await runner.advance({ waitForAcksMs: 5000 });
      await runner.backfill();
      await runner.advance({ waitForAcksMs: 5000 });
      await runner.verify();
      await runner.advance({ waitForAcksMs: 5000 });

      // A difference the verify finds but does not repair keeps cutover shut. (Written past the
      // kit, as another program would: kit.forShard() refuses writes to the migrating tables.)
      const corrupt = () => kit.topology.ownerOf(3).primary.knex('users_v2').where('id', 3).update({ last_name: 'Corrupted' });
      await corrupt();
      const unrepaired = await runner.verify({ repair: false });
      expect(unrepaired.unrepaired).to.equal(1);
      const gate = await runner.advance().catch((caught: unknown) => caught);
      expect(gate).to.be.instanceOf(MigrationGateError);
      expect((gate as MigrationGateError).reasons.join()).to.match(/unrepaired/);
      await runner.verify();

      // A shadow read that sees the corruption keeps it shut too.
      await corrupt();
      await kit.table('users').where('id', 3).first();
      await kit.migrationCoordinator.settle();
      const mismatchGate = await runner.advance().catch((caught: unknown) => caught);
      expect((mismatchGate as MigrationGateError).reasons.join()).to.match(/shadow-read mismatches/);
      expect((await runner.status()).shadowMismatches).to.be.greaterThan(0);

      // A second runner is refused while the first holds the lock.
      const second = await createShardKit({ ...target.config, onlineMigrations: [usersV2], migrations: { pollIntervalMs: 100, leaseMs: 3000 } });
      kits.push(second);
      let holding: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        holding = resolve;
      });
      const slow = runner.verify({ onProgress: () => holding(), chunkSize: 1 });
      await held;
      const locked = await second.onlineMigration('users_v2').verify().catch((caught: unknown) => caught);
      await slow;
      expect(locked).to.be.instanceOf(MigrationLockedError);

      // An instance that has not applied the current phase (alive, its lease running, but stuck
      // on the version before) holds the next step back.
      const before = await runner.status();
      await runner.rollback();
      await kit.migrationCoordinator.store.ack('users_v2', 'stuck-instance', before.version, 60_000);
      const waiting = await runner.advance().catch((caught: unknown) => caught);
      expect(waiting).to.be.instanceOf(MigrationGateError);
      expect((waiting as MigrationGateError).reasons.join()).to.match(/instance stuck-instance still applies version/);
    });

    if (target.name === 'postgres cluster') {
      it('tells other instances of a phase change at once through LISTEN/NOTIFY, not at their next poll', async () => {
        kits = await migrationKits(target.config, 1);
        const runner = kits[0]!.onlineMigration('users_v2');
        // A second instance that would not poll again for a minute.
        const listener = await createShardKit({ ...target.config, onlineMigrations: [usersV2], migrations: { pollIntervalMs: 60_000, leaseMs: 60_000 } });
        kits.push(listener);
        await runner.start();
        const started = Date.now();
        while (listener.migrationCoordinator.phaseOf('users_v2')?.phase !== 'dual_write' && Date.now() - started < 5000) await sleep(10);
        const delayMs = Date.now() - started;
        console.log(`      the second instance applied dual_write ${delayMs} ms after the transition`);
        expect(listener.migrationCoordinator.phaseOf('users_v2')?.phase).to.equal('dual_write');
        expect(delayMs).to.be.below(5000);
      });
    }
  });
}
