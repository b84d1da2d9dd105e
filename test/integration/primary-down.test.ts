import { expect } from 'chai';
import type { ShardKit } from '../../lib/index.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

// A primary killed (its server refuses connections, so nothing commits there): its fresh
// replica keeps serving replica reads within their bound, status marks the primary down, and
// everything resumes once it is back.
for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`a dead primary on the ${target.name}`, function () {
    this.timeout(120_000);
    let kit: ShardKit;
    let primary: ServerControl;
    let shard: string;

    before(async () => {
      kit = await openFreshKit({
        ...target,
        config: { ...target.config, lagMonitor: { intervalMs: 100, timeoutMs: 500 }, breaker: { volumeThreshold: 2, resetTimeoutMs: 500 } },
      });
      shard = kit.topology.shards.find((candidate) => candidate.replicas.length > 0)!.name;
      primary = new ServerControl(kit.topology.shard(shard).primary);
      const ids = Array.from({ length: 40 }, (_, index) => index + 1).filter((id) => kit.shardFor(id) === shard);
      await kit.table('users').insert(ids.map((id) => ({ id, name: `user ${id}`, email: `u${id}@example.com` })));
    });

    after(async () => {
      await primary?.start();
      await kit?.close();
    });

    it('keeps serving replica reads from the fresh replica, marks the primary down, and recovers', async () => {
      const key = Array.from({ length: 40 }, (_, index) => index + 1).find((id) => kit.shardFor(id) === shard)!;
      const replicaRead = () => kit.table('users', { read: 'replica', maxLagMs: 1000 }).where('id', key).first();
      expect(await eventually(async () => (await replicaRead())?.name === `user ${key}`, 10_000)).to.equal(true);
      const served: string[] = [];
      kit.on('query', (event) => {
        if (event.shard === shard && !event.error) served.push(event.role);
      });
      await primary.kill();
      const killedAt = performance.now();
      let reads = 0;
      let failed = 0;
      while (performance.now() - killedAt < 3000) {
        const row = await replicaRead().catch(() => undefined);
        if (row?.name === `user ${key}`) reads++;
        else failed++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      console.log(`      ${reads} replica reads served in the 3 s after the kill, ${failed} failed`);
      expect(failed).to.equal(0);
      expect(reads).to.be.greaterThan(20);
      expect(served.every((role) => role === 'replica')).to.equal(true);

      const write = await kit
        .table('users')
        .where('id', key)
        .update({ name: 'x' })
        .catch((caught: unknown) => caught);
      expect(write).to.have.property('code').that.is.oneOf(['CONNECTION_FAILED', 'SHARD_UNAVAILABLE']);

      const status = await kit.status({ probe: true, probeTimeoutMs: 1000 });
      const primaryStatus = status.nodes.find((node) => node.node === kit.topology.shard(shard).primary.config.name)!;
      const replicaStatus = status.nodes.find((node) => node.shard === shard && node.role === 'replica')!;
      expect(primaryStatus.health).to.equal('down');
      expect(replicaStatus.health).to.equal('up');

      await primary.start();
      expect(await eventually(async () => (await kit.table('users').where('id', key).update({ name: `user ${key}` })) === 1, 20_000)).to.equal(true);
    });
  });
}
