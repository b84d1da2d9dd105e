import { expect } from 'chai';
import type { ShardKit } from '../../lib/index.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const BOUND_MS = 100;
const tight = { read: 'replica', maxLagMs: BOUND_MS } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The lag monitor at its defaults: the freshness signal of an idle replica from the primary's
// unmoved position (lib/replicas/position-history.ts), no heartbeat while nothing lags.
for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`replica freshness at a ${BOUND_MS} ms bound on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    let replica: ServerControl;
    let shardName: string;
    let id: number;
    const served: string[] = [];
    const heartbeats: number[] = [];

    async function read(): Promise<{ name: string | undefined; role: string | undefined }> {
      const before = served.length;
      const row = await kit.table('users', tight).where('id', id).first();
      return { name: row?.name, role: served[before] };
    }

    before(async () => {
      kit = await openFreshKit(target);
      shardName = kit.shardNames[0]!;
      const shard = kit.topology.shard(shardName);
      replica = new ServerControl(shard.replicas[0]!);
      id = 1;
      while (kit.shardFor(id) !== shardName) id++;
      await kit.table('users').insert({ id, name: 'v0', email: `u${id}@example.com` });
      kit.on('query', (event) => {
        if (event.table === 'users' && event.intent === 'read') served.push(event.role);
      });
      shard.primary.knex.on('query', (query: { sql: string }) => {
        if (/insert into .shardkit_heartbeat/i.test(query.sql)) heartbeats.push(Date.now());
      });
    });

    afterEach(async () => {
      await replica.resumeReplay().catch(() => undefined);
      if (target.config.shards[0]!.primary.dialect === 'mysql') await replica.startReplication().catch(() => undefined);
    });

    after(async () => {
      await kit?.close();
    });

    it('serves an idle, caught-up replica at the bound, with about one replica probe per second and no heartbeat', async () => {
      expect(await eventually(async () => (await read()).role === 'replica', 10_000)).to.equal(true);
      await sleep(1500);
      const probesBefore = kit.lagProbeCount;
      const heartbeatsBefore = heartbeats.length;
      const startedAt = Date.now();
      let reads = 0;
      let byReplica = 0;
      while (Date.now() - startedAt < 3000) {
        const { name, role } = await read();
        expect(name).to.equal('v0');
        reads++;
        if (role === 'replica') byReplica++;
        await sleep(reads % 17);
      }
      const seconds = (Date.now() - startedAt) / 1000;
      const probesPerSecond = (kit.lagProbeCount - probesBefore) / seconds / kit.topology.shards.reduce((sum, shard) => sum + shard.replicas.length, 0);
      console.log(
        `      ${byReplica} of ${reads} reads served by the replica at maxLagMs ${BOUND_MS}; ${probesPerSecond.toFixed(2)} replica probes/s per replica; ${heartbeats.length - heartbeatsBefore} heartbeats`,
      );
      expect(byReplica / reads).to.be.at.least(0.99);
      expect(probesPerSecond).to.be.at.most(2);
      expect(heartbeats.length - heartbeatsBefore).to.equal(0);
    });

    it('never serves a value older than the bound while writes stream, with replay paused and then resumed', async () => {
      expect(await eventually(async () => (await read()).role === 'replica', 10_000)).to.equal(true);
      // Acknowledged versions of the row: version n was committed before acked[n].
      const acked: number[] = [Date.now()];
      let writing = true;
      const writer = (async () => {
        for (let version = 1; writing; version++) {
          await kit.table('users').where('id', id).update({ name: `v${version}` });
          acked[version] = Date.now();
          await sleep(5);
        }
      })();
      let reads = 0;
      let stale = 0;
      const byPhase = { running: 0, paused: 0, resumed: 0 };
      const readFor = async (ms: number, phase: keyof typeof byPhase) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          const issuedAt = Date.now();
          const { name, role } = await read();
          const seen = Number(name?.slice(1));
          // Every version acknowledged more than the bound before the read was sent must be visible.
          const required = acked.findLastIndex((at) => at !== undefined && at < issuedAt - BOUND_MS);
          if (seen < required) stale++;
          if (role === 'replica') byPhase[phase]++;
          reads++;
        }
      };
      try {
        await readFor(1000, 'running');
        await replica.pauseReplay();
        await readFor(1500, 'paused');
        await replica.resumeReplay();
        await readFor(1500, 'resumed');
      } finally {
        writing = false;
        await writer;
      }
      console.log(`      ${reads} reads while ${acked.length - 1} updates committed: ${stale} older than ${BOUND_MS} ms; served by the replica: ${JSON.stringify(byPhase)}`);
      expect(stale).to.equal(0);
      expect(byPhase.resumed, 'the replica serves again once it caught up').to.be.greaterThan(0);
    });
  });
}
