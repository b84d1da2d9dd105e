import { expect } from 'chai';
import { CrossShardTransactionError, QueryTimeoutError, type ShardKit, ShardKitError } from '../../lib/index.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const user = (id: number) => ({ id, name: `user ${id}`, email: `u${id}@example.com` });

for (const target of TARGETS) {
  describe(`routed transactions on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    const key = 7;
    let otherKey: number;

    before(async () => {
      kit = await openFreshKit(target);
      otherKey = Array.from({ length: 100 }, (_, index) => index + 1).find((candidate) => kit.shardFor(candidate) !== kit.shardFor(key))!;
      await kit.table('users').insert([user(key), user(otherKey)]);
    });

    after(async () => {
      await kit?.close();
    });

    it('commits routed statements on the key\'s shard with kit.table() result shapes, and rolls back on a throw', async () => {
      const result = await kit.transaction(key, async (trx) => {
        const inserted = await trx.table('orders').insert([1, 2].map((id) => ({ user_id: key, id, amount_cents: 100 * id })));
        const updated = await trx.table('users').where('id', key).update({ name: 'Ada' });
        const total = await trx.table('orders').where('user_id', key).sum('amount_cents as s').first();
        return { inserted, updated, total: Number(total.s), shard: trx.shard };
      });
      expect(result).to.deep.equal({ inserted: { rowCount: 2 }, updated: 1, total: 300, shard: kit.shardFor(key) });
      const failed = await kit
        .transaction(key, async (trx) => {
          await trx.table('orders').insert({ user_id: key, id: 3, amount_cents: 1 });
          throw new Error('the repository changed its mind');
        })
        .catch((error: Error) => error);
      expect((failed as Error).message).to.equal('the repository changed its mind');
      expect((await kit.table('orders').where('user_id', key).pluck('id')).map(Number)).to.have.members([1, 2]);
    });

    it("refuses a statement on another shard's rows, or on every shard, naming both shards, before it runs", async () => {
      const error = await kit.transaction(key, (trx) => trx.table('users').where('id', otherKey).update({ name: 'x' })).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(CrossShardTransactionError);
      expect(error).to.include({ transactionShard: kit.shardFor(key), retryable: false });
      expect((error as CrossShardTransactionError).otherShards).to.deep.equal([kit.shardFor(otherKey)]);
      expect((await kit.table('users').where('id', otherKey).first()).name).to.equal(`user ${otherKey}`);
      const scatter = await kit.transaction(key, (trx) => trx.table('users').select('id')).catch((caught: unknown) => caught);
      expect(scatter).to.be.instanceOf(CrossShardTransactionError);
    });

    it('rolls back a savepoint alone', async () => {
      const ids = await kit.transaction(key, async (trx) => {
        await trx.table('orders').insert({ user_id: key, id: 10, amount_cents: 1 });
        await trx
          .transaction(async (inner) => {
            await inner.table('orders').insert({ user_id: key, id: 11, amount_cents: 1 });
            throw new Error('inner');
          })
          .catch(() => undefined);
        return trx.table('orders').where('user_id', key).orderBy('id').pluck('id');
      });
      expect(ids.map(Number)).to.deep.equal([1, 2, 10]);
    });

    it('re-runs a serializable transaction after a conflict when asked, losing no update', async () => {
      await kit.table('users').where('id', key).update({ name: '0' });
      const increment = (retries: number) =>
        kit.transaction(
          key,
          async (trx) => {
            const row = await trx.table('users').where('id', key).first();
            await new Promise((resolve) => setTimeout(resolve, 20));
            await trx.table('users').where('id', key).update({ name: String(Number(row.name) + 1) });
          },
          { isolation: 'serializable', retries },
        );
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => increment(20)));
      const failures = outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome as PromiseRejectedResult).reason);
      expect(failures, String(failures[0])).to.deep.equal([]);
      expect((await kit.table('users').where('id', key).first()).name).to.equal('6');
      if (target.name !== 'pglite') {
        // Without retries some of them fail, typed and retryable (PGlite runs one statement at a time).
        const once = await Promise.allSettled(Array.from({ length: 6 }, () => increment(0)));
        const reasons = once.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome as PromiseRejectedResult).reason as ShardKitError);
        expect(reasons.length, 'some conflict').to.be.greaterThan(0);
        expect(reasons.every((reason) => reason instanceof ShardKitError && reason.retryable)).to.equal(true);
      }
    });

    it('holds one deadline for the whole transaction', async () => {
      const started = performance.now();
      const error = await kit
        .transaction(
          key,
          async (trx) => {
            await new Promise((resolve) => setTimeout(resolve, 400));
            return trx.table('users').where('id', key).first();
          },
          { timeoutMs: 300 },
        )
        .catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(QueryTimeoutError);
      expect(performance.now() - started).to.be.below(2000);
    });

    it('rolls back what a transaction wrote before it ran out of time, never leaving it open on a pooled connection', async () => {
      const error = await kit
        .transaction(
          key,
          async (trx) => {
            await trx.table('orders').insert({ user_id: key, id: 500, amount_cents: 1 });
            await new Promise((resolve) => setTimeout(resolve, 400));
            return trx.table('orders').where('user_id', key).first();
          },
          { timeoutMs: 300 },
        )
        .catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(QueryTimeoutError);
      // A later transaction on the same shard commits only its own row.
      await kit.transaction(key, (trx) => trx.table('orders').insert({ user_id: key, id: 501, amount_cents: 1 }));
      const ids = (await kit.table('orders').where('user_id', key).whereIn('id', [500, 501]).pluck('id')).map(Number);
      expect(ids).to.deep.equal([501]);
    });

    it('does not commit a transaction whose function finished after its deadline (in-process PGlite commits and says so)', async () => {
      const outcome = await kit
        .transaction(
          key,
          async (trx) => {
            await trx.table('orders').insert({ user_id: key, id: 502, amount_cents: 1 });
            await new Promise((resolve) => setTimeout(resolve, 400));
          },
          { timeoutMs: 300 },
        )
        .then(() => 'committed', (error: unknown) => error);
      const stored = (await kit.table('orders').where('user_id', key).where('id', 502).pluck('id')).length;
      if (target.name === 'pglite') expect([outcome, stored]).to.deep.equal(['committed', 1]);
      else {
        expect(outcome).to.be.instanceOf(QueryTimeoutError);
        expect(stored, 'the server rolled it back').to.equal(0);
      }
    });
  });
}
