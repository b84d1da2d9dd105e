import { expect } from 'chai';
import knexModule from 'knex';
import { MergeLimitError } from '../../../lib/errors.js';
import { type AnyQueryBuilder, internalsOf } from '../../../lib/knex/builder-internals.js';
import { inlineSubqueries } from '../../../lib/kit/inline-subqueries.js';

const db = knexModule.knex({ client: 'pg' });

describe('inlining subqueries', () => {
  it('writes the subquery values into the outer IN list, asking for at most the bound and one more', async () => {
    const asked: (number | undefined)[] = [];
    const outer = db('orders').whereIn('id', db('users').select('id').where('name', 'x')) as unknown as AnyQueryBuilder;
    const { query } = await inlineSubqueries(outer, [{ statement: 0, kind: 'in' }], async (subquery) => {
      asked.push(internalsOf(subquery)._single.limit);
      return [{ id: 4 }, { id: 9 }];
    }, 100);
    expect(asked).to.deep.equal([101]);
    expect((query as unknown as ReturnType<typeof db>).toSQL().toNative()).to.deep.equal({ sql: 'select * from "orders" where "id" in ($1, $2)', bindings: [4, 9] });
  });

  it('fails with MERGE_LIMIT instead of sending more values than the bound', async () => {
    const outer = db('orders').whereIn('id', db('users').select('id')) as unknown as AnyQueryBuilder;
    const rows = Array.from({ length: 6 }, (_, id) => ({ id }));
    const failure = await inlineSubqueries(outer, [{ statement: 0, kind: 'in' }], async () => rows, 5).then(() => undefined, (error: unknown) => error);
    expect(failure).to.be.instanceOf(MergeLimitError);
    expect(failure).to.have.property('retryable', false);
  });

  it('answers NOT EXISTS as a constant condition', async () => {
    const outer = db('orders').whereNotExists(db('countries').select('code')) as unknown as AnyQueryBuilder;
    const { query } = await inlineSubqueries(outer, [{ statement: 0, kind: 'exists' }], async () => [{ code: 'de' }], 100);
    expect((query as unknown as ReturnType<typeof db>).toSQL().sql).to.equal('select * from "orders" where 1 = 0');
  });
});
