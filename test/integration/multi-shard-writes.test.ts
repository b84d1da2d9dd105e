import { expect } from 'chai';
import { QueryTimeoutError, ScatterError, type ShardKit } from '../../lib/index.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const SECRET_VALUE = 'value-that-must-not-leak';

for (const target of TARGETS) {
  describe(`multi-shard writes on ${target.name}: which shards committed`, function () {
    this.timeout(120_000);
    let kit: ShardKit;
    const keysOn = (shard: string, count: number, from = 1) => {
      const keys: number[] = [];
      for (let key = from; keys.length < count; key++) if (kit.shardFor(key) === shard) keys.push(key);
      return keys;
    };
    const user = (id: number, email = `u${id}@example.com`) => ({ id, name: `user ${id}`, email });
    const countOn = async (shard: string) => Number(((await kit.forShard(shard)('users').count('* as n')) as { n: unknown }[])[0]!.n);

    beforeEach(async () => {
      kit = await openFreshKit(target);
    });

    afterEach(async () => {
      await kit?.close();
    });

    it('names the shards that committed when one shard refuses its part, and rolls that part back whole', async () => {
      const [first, second] = kit.shardNames as [string, string];
      const [taken] = keysOn(second, 1);
      await kit.table('users').insert(user(taken!));
      // The second shard's part has a fresh row and then a duplicate: neither may stay.
      const rows = [...keysOn(first, 3).map((id) => user(id)), user(keysOn(second, 1, taken! + 1)[0]!), user(taken!, SECRET_VALUE)];
      const error = await kit
        .table('users')
        .insert(rows)
        .catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(ScatterError);
      const scatter = error as ScatterError;
      expect(scatter.succeeded).to.deep.equal([first]);
      expect(scatter.failures.map((entry) => entry.shard)).to.deep.equal([second]);
      expect(scatter.unknown).to.deep.equal([]);
      expect(scatter.retryable, 'a retry would insert the committed rows twice').to.equal(false);
      expect(scatter.failures[0]!.error.retryable).to.equal(false);
      expect(scatter.message).to.not.include(SECRET_VALUE);
      expect(await countOn(first)).to.equal(3);
      expect(await countOn(second)).to.equal(1);
    });

    it('splits an insert beyond the parameter limit into statements of one transaction per shard', async () => {
      // 17,000 rows of 4 columns: 68,000 parameters, more than PostgreSQL's 65,535 in one statement.
      const rows = Array.from({ length: 17_000 }, (_, index) => ({ ...user(index + 1), created_at: new Date('2026-01-01T00:00:00Z') }));
      const result = await kit.table('users').insert(rows);
      expect(result).to.deep.equal({ rowCount: 17_000 });
      let total = 0;
      for (const shard of kit.shardNames) total += await countOn(shard);
      expect(total).to.equal(17_000);
    });

    it('fails an oversized insert with a bounded message that carries no bound value', async () => {
      const rows = Array.from({ length: 3000 }, (_, index) => user(index + 1, `${SECRET_VALUE}-${index}`));
      rows.push(user(1, SECRET_VALUE));
      const error = await kit
        .table('users')
        .insert(rows)
        .catch((caught: unknown) => caught);
      expect(error).to.have.property('code');
      expect((error as Error).message.length).to.be.below(2100);
      expect((error as Error).message).to.not.include(SECRET_VALUE);
    });

    it('gives writes one result shape on one shard and many', async () => {
      const [first] = kit.shardNames as [string];
      expect(await kit.table('users').insert(user(keysOn(first, 1)[0]!))).to.deep.equal({ rowCount: 1 });
      const many = kit.shardNames.flatMap((shard) => keysOn(shard, 2, 100)).map((id) => user(id));
      expect(await kit.table('users').insert(many)).to.deep.equal({ rowCount: many.length });
      expect(await kit.allShards('users').update({ name: 'renamed' })).to.equal(many.length + 1);
      expect(await kit.table('users').whereIn('id', many.map((row) => row.id)).del()).to.equal(many.length);
    });

    if (target.name !== 'pglite') {
      it('reports a shard that stops answering mid-write as not committed, the others as committed, within the deadline', async () => {
        const [first, second] = kit.shardNames as [string, string];
        const stopped = new ServerControl(kit.topology.shard(second).primary);
        const rows = [...keysOn(first, 2), ...keysOn(second, 2)].map((id) => user(id));
        await stopped.pause();
        const started = performance.now();
        try {
          const error = await kit
            .table('users', { timeoutMs: 1500 })
            .insert(rows)
            .catch((caught: unknown) => caught);
          const ms = performance.now() - started;
          console.log(`      write with a stopped shard failed after ${ms.toFixed(0)} ms (deadline 1500 ms)`);
          expect(error).to.be.instanceOf(ScatterError);
          const scatter = error as ScatterError;
          expect(scatter.succeeded).to.deep.equal([first]);
          expect(scatter.failures[0]!.error, scatter.failures[0]!.error.message).to.be.instanceOf(QueryTimeoutError);
          expect(scatter.unknown).to.deep.equal([]);
          expect(ms).to.be.below(1500 + 500);
        } finally {
          await stopped.resume();
        }
        await eventually(async () => (await countOn(second)) >= 0, 10_000);
        expect(await countOn(first)).to.equal(2);
        expect(await countOn(second), 'the stopped shard rolled its part back').to.equal(0);
      });

      it('on abort, finishes the parts already sent and says which committed', async () => {
        const [first, second] = kit.shardNames as [string, string];
        const stopped = new ServerControl(kit.topology.shard(second).primary);
        const rows = [...keysOn(first, 2), ...keysOn(second, 2)].map((id) => user(id));
        const controller = new AbortController();
        await stopped.pause();
        try {
          setTimeout(() => controller.abort(new Error('the client went away')), 200);
          const error = await kit
            .table('users', { timeoutMs: 1500, signal: controller.signal })
            .insert(rows)
            .catch((caught: unknown) => caught);
          expect(error).to.be.instanceOf(ScatterError);
          expect((error as ScatterError).succeeded).to.deep.equal([first]);
          expect((error as ScatterError).failures.map((entry) => entry.shard)).to.deep.equal([second]);
        } finally {
          await stopped.resume();
        }
        expect(await countOn(first)).to.equal(2);
        expect(await eventually(async () => (await countOn(second)) === 0, 10_000)).to.equal(true);
      });
    }
  });
}
