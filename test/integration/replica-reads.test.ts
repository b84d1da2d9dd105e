import { expect } from 'chai';
import { type QueryEvent, ReplicaLagError, type ShardKit, type TableOptions } from '../../lib/index.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const INTERVAL_MS = 100;
const BOUND_MS = 400;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`replica reads on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    let replica: ServerControl;
    let shardName: string;
    const events: QueryEvent[] = [];
    let nextId = 0;
    const isMariadb = target.config.shards[0]!.primary.dialect === 'mysql';

    /** A fresh user id owned by the shard under test. */
    function idOnShard(): number {
      do nextId++;
      while (kit.shardFor(nextId) !== shardName);
      return nextId;
    }

    const user = (id: number) => ({ id, name: `user ${id}`, email: `u${id}@example.com` });

    async function read(id: number, options: TableOptions) {
      const before = events.length;
      const row = await kit.table('users', options).where('id', id).first();
      const event = events.slice(before).find((candidate) => candidate.table === 'users' && candidate.intent === 'read');
      return { row, role: event?.role, fallback: event?.fallback };
    }

    const replicaRead = { read: 'replica', maxLagMs: BOUND_MS } as const;

    async function readsReachReplica(timeoutMs = 10_000): Promise<boolean> {
      const probe = idOnShard();
      return eventually(async () => (await read(probe, replicaRead)).role === 'replica', timeoutMs);
    }

    before(async () => {
      kit = await openFreshKit({
        ...target,
        config: {
          ...target.config,
          lagMonitor: { intervalMs: INTERVAL_MS, timeoutMs: 500 },
          breaker: { resetTimeoutMs: 500, volumeThreshold: 1 },
        },
      });
      shardName = kit.shardNames[0]!;
      replica = new ServerControl(kit.topology.shard(shardName).replicas[0]!);
      kit.on('query', (event) => events.push(event));
    });

    let releaseStall: (() => Promise<void>) | undefined;

    afterEach(async () => {
      // Each test leaves the replica running, replaying and replicating, as it found it.
      await replica.start();
      await releaseStall?.();
      releaseStall = undefined;
      await replica.resumeReplay().catch(() => undefined);
      if (isMariadb) await replica.startReplication().catch(() => undefined);
      expect(await readsReachReplica(20_000), 'the replica serves reads again').to.equal(true);
    });

    after(async () => {
      await kit?.close();
    });

    it('moves reads off a lagging replica within the bound, never returning older data, and back after it catches up', async () => {
      expect(await readsReachReplica()).to.equal(true);
      await replica.pauseReplay();
      const id = idOnShard();
      await kit.table('users').insert(user(id));
      const committedAt = Date.now();
      let reads = 0;
      let violations = 0;
      let movedAt: number | undefined;
      while (Date.now() - committedAt < 2500) {
        const issuedAt = Date.now();
        const { row, role } = await read(id, replicaRead);
        reads++;
        if (row === undefined && issuedAt - committedAt > BOUND_MS) violations++;
        if (role === 'primary') movedAt ??= issuedAt;
        await sleep(10);
      }
      console.log(`      ${reads} reads with maxLagMs ${BOUND_MS}: ${violations} stale after the bound; on the primary ${movedAt! - committedAt} ms after the write`);
      expect(violations).to.equal(0);
      expect(movedAt, 'reads moved to the primary').to.not.equal(undefined);
      expect(movedAt! - committedAt).to.be.at.most(BOUND_MS + INTERVAL_MS);

      await replica.resumeReplay();
      expect(await eventually(async () => (await read(id, replicaRead)).role === 'replica', 5000)).to.equal(true);
      expect((await read(id, replicaRead)).row).to.not.equal(undefined);
    });

    it('keeps every read succeeding while the replica is down, and uses it again after it restarts', async () => {
      expect(await readsReachReplica()).to.equal(true);
      const id = idOnShard();
      await kit.table('users').insert(user(id));
      await replica.kill();
      let reads = 0;
      let failures = 0;
      const until = Date.now() + 2000;
      while (Date.now() < until) {
        await read(id, replicaRead).catch(() => failures++);
        reads++;
      }
      console.log(`      ${reads} replica reads while the replica was down: ${failures} failed`);
      expect(failures).to.equal(0);
      const status = (await kit.status()).nodes.find((node) => node.node === kit.topology.shard(shardName).replicas[0]!.config.name)!;
      expect(status.lagMs, 'a dead replica has no known lag').to.equal(undefined);

      await replica.start();
      expect(await readsReachReplica(15_000)).to.equal(true);
    });

    it('serves a read carrying a write’s token only from a node that applied it', async () => {
      expect(await readsReachReplica()).to.equal(true);
      // On MariaDB a stopped SQL thread makes the lag unknown, and an unknown lag never serves a
      // read, so replay is held up behind a read lock instead: the replica keeps replicating.
      const database = kit.topology.shard(shardName).replicas[0]!.config.address.database!;
      if (isMariadb) releaseStall = await replica.stallReplayOn(database, 'users');
      if (!isMariadb) await replica.pauseReplay();
      const session = kit.session();
      const id = idOnShard();
      await session.run(() => kit.table('users').insert(user(id)));
      const lenient = { read: 'replica', maxLagMs: 60_000 } as const;

      // Without the token the lenient bound lets the paused replica answer, without the write.
      const plain = await read(id, lenient);
      expect([plain.role, plain.row]).to.deep.equal(['replica', undefined]);
      const inSession = await session.run(() => read(id, lenient));
      expect(inSession.role).to.equal('primary');
      expect(inSession.row).to.include({ name: `user ${id}` });
      const viaToken = await read(id, { ...lenient, after: session.token().toString() });
      expect(viaToken.role).to.equal('primary');
      expect(viaToken.row).to.include({ name: `user ${id}` });

      if (releaseStall) {
        await releaseStall();
        releaseStall = undefined;
      } else await replica.resumeReplay();
      const servedByReplica = await eventually(async () => {
        const again = await session.run(() => read(id, lenient));
        return again.role === 'replica' && again.row !== undefined;
      }, 5000);
      expect(servedByReplica, 'the replica serves the token once it applied the write').to.equal(true);
    });

    it("fallback 'error' reports the lags it saw; 'wait' waits for a replica, then reads the primary", async () => {
      expect(await readsReachReplica()).to.equal(true);
      await replica.pauseReplay();
      const id = idOnShard();
      await kit.table('users').insert(user(id));
      expect(await eventually(async () => (await read(id, replicaRead)).role === 'primary', 3000)).to.equal(true);

      const error = await read(id, { ...replicaRead, fallback: 'error' }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(ReplicaLagError);
      const verdict = (error as ReplicaLagError).replicas[0]!;
      if (isMariadb) {
        // STOP SLAVE SQL_THREAD stops replication: MariaDB itself reports the lag as NULL.
        expect(verdict.lagMs).to.equal(undefined);
        expect(verdict.reason).to.match(/lag unknown: replication threads: IO Yes, SQL No/);
      } else {
        // A paused replay keeps receiving WAL: the lag is known and grows.
        expect(verdict.lagMs).to.be.greaterThan(BOUND_MS);
      }
      expect((error as ReplicaLagError).code).to.equal('REPLICA_LAG');

      const waitStarted = Date.now();
      const waited = await read(id, { ...replicaRead, fallback: 'wait', waitMs: 600 });
      expect(waited.role).to.equal('primary');
      expect(Date.now() - waitStarted).to.be.at.least(550);

      setTimeout(() => void replica.resumeReplay(), 200);
      const caughtUp = await read(id, { ...replicaRead, fallback: 'wait', waitMs: 5000 });
      expect(caughtUp.role).to.equal('replica');
      expect(caughtUp.row).to.include({ name: `user ${id}` });
    });

    if (isMariadb) {
      it('treats a replica whose replication stopped as unknown, never as fresh', async () => {
        expect(await readsReachReplica()).to.equal(true);
        await replica.stopReplication();
        const id = idOnShard();
        const lenient = { read: 'replica', maxLagMs: 3_600_000 } as const;
        expect(await eventually(async () => (await read(id, lenient)).role === 'primary', 3000)).to.equal(true);
        const status = (await kit.status()).nodes.find((node) => node.node === kit.topology.shard(shardName).replicas[0]!.config.name)!;
        expect(status.lagMs).to.equal(undefined);
        expect(status.problem).to.match(/replication threads/);
      });
    }
  });
}
