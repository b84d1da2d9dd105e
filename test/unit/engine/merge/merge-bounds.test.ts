import { expect } from 'chai';
import knexModule from 'knex';
import { mergeArrays } from '../../../../lib/engine/merge/merge-rows.js';
import { MergeLimitError } from '../../../../lib/errors.js';
import type { AnyQueryBuilder } from '../../../../lib/knex/builder-internals.js';
import { planMerge } from '../../../../lib/planner/plan-merge.js';

const db = knexModule.knex({ client: 'pg' });
const context = { family: 'postgres' as const, columnType: () => 'int' as const, bigintsAs: 'string' as const };
const plan = (query: unknown, maxShardRows: number) =>
  planMerge(query as AnyQueryBuilder, { family: 'postgres', tables: [{ name: 'items', qualifier: 'items' }], shardKey: 'user_id', maxShardRows });

describe('merges that hold rows are bounded', () => {
  it('fails with MERGE_LIMIT when one shard returns more rows than the bound, instead of holding them', async () => {
    const spec = plan(db('items').distinct('score'), 2);
    expect(spec.shard.limit, 'each shard is asked for the bound and one more').to.equal(3);
    const failure = await mergeArrays(spec, [[{ score: 1 }, { score: 2 }, { score: 3 }], [{ score: 1 }]], context).then(() => undefined, (error: unknown) => error);
    expect(failure).to.be.instanceOf(MergeLimitError);
  });

  it('answers within the bound', async () => {
    const spec = plan(db('items').select('score').countDistinct('label as n').groupBy('score').orderBy('score'), 4);
    const rows = await mergeArrays(spec, [[{ __sk_g0: 1, __sk_d0: 'a' }, { __sk_g0: 1, __sk_d0: 'b' }], [{ __sk_g0: 1, __sk_d0: 'a' }, { __sk_g0: 2, __sk_d0: 'c' }]], context);
    expect(rows).to.deep.equal([
      { score: 1, n: '2' },
      { score: 2, n: '1' },
    ]);
  });
});
