import { expect } from 'chai';
import type { Knex } from 'knex';
import type { ShardKit } from '../../lib/index.js';
import { eventually } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';


// The local cluster itself (scripts/cluster.sh): every shard on its own servers, every replica
// streams from its primary and refuses the application's writes, as replica reads rely on.
for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`local cluster: ${target.name}`, function () {
    this.timeout(30_000);
    let kit: ShardKit;

    before(async () => {
      kit = await openFreshKit(target);
    });

    after(async () => {
      await kit?.close();
    });

    it('has replicas that apply their primary’s writes (every PostgreSQL shard, the first MariaDB one)', async () => {
      const replicated = kit.topology.shards.filter((shard) => shard.replicas.length > 0);
      expect(replicated.map((shard) => shard.name)).to.deep.equal(target.name === 'mariadb cluster' ? ['maria-1'] : kit.shardNames);
      for (const shard of replicated) {
        const id = 900_000 + kit.shardNames.indexOf(shard.name);
        await shard.primary.knex('users').insert({ id, name: 'replicated', email: 'r@example.com' });
        for (const replica of shard.replicas) {
          const seen = await eventually(async () => (await replica.knex('users').where('id', id)).length === 1);
          expect(seen, `${replica.config.name} saw the row`).to.equal(true);
        }
        await shard.primary.knex('users').where('id', id).del();
      }
    });

    it('refuses writes on replicas', async () => {
      for (const replica of kit.topology.shards.flatMap((shard) => shard.replicas)) {
        expect(await eventually(async () => Array.isArray(await replica.knex('users').limit(1)))).to.equal(true);
        const error = await (replica.knex as Knex)('users')
          .insert({ id: 1, name: 'x', email: 'x' })
          .then(
            () => undefined,
            (caught: Error) => caught,
          );
        expect(error?.message, replica.config.name).to.match(/read-only/i);
      }
    });
  });
}
