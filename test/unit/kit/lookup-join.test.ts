import { expect } from 'chai';
import knexModule from 'knex';
import { MergeLimitError } from '../../../lib/errors.js';
import { type AnyQueryBuilder, internalsOf } from '../../../lib/knex/builder-internals.js';
import { runLookupJoin } from '../../../lib/kit/lookup-join.js';
import type { LookupJoinSpec } from '../../../lib/planner/plan-lookup-join.js';

const db = knexModule.knex({ client: 'pg' });
const spec = (maxRows: number, type: 'inner' | 'left' = 'inner'): LookupJoinSpec => ({
  strategy: 'lookup',
  type,
  outer: { table: 'orders', qualifier: 'o', column: 'product_id' },
  inner: { table: 'products', qualifier: 'p', column: 'id' },
  innerWhere: [],
  batchSize: 2,
  maxRows,
});
const columnTypes = {
  lookup: async () => (_table: string | undefined, column: string) => (column === 'name' ? ('text' as const) : ('bigint' as const)),
  columnNames: async (table: string) => (table === 'orders' ? ['id', 'product_id'] : ['id', 'name']),
};
const ORDERS = [
  { id: 1, product_id: 10 },
  { id: 2, product_id: 11 },
  { id: 3, product_id: 10 },
  { id: 4, product_id: null },
  { id: 5, product_id: 12 },
];
const PRODUCTS = [
  { id: 10, name: 'ten' },
  { id: 11, name: 'eleven' },
];

function parts(maxRows: number, seen: string[]) {
  return {
    family: 'postgres' as const,
    columnTypes,
    run: async (query: AnyQueryBuilder) => {
      const sql = (query as unknown as ReturnType<typeof db>).toSQL();
      seen.push(sql.sql);
      const table = String(internalsOf(query)._single.table);
      if (table.startsWith('orders')) return ORDERS.slice(0, maxRows + 1);
      const wanted = new Set((sql.bindings as unknown[]).slice(0, -1));
      return PRODUCTS.filter((product) => wanted.has(product.id));
    },
  };
}

describe('lookup joins', () => {
  it('joins in memory after batched lookups of the distinct join values, NULL matching nothing', async () => {
    const seen: string[] = [];
    const query = db('orders as o').join('products as p', 'p.id', 'o.product_id').select('o.id', 'p.name').orderBy('o.id', 'desc') as unknown as AnyQueryBuilder;
    const rows = await runLookupJoin(query, spec(100), parts(100, seen));
    expect(rows).to.deep.equal([
      { id: 3, name: 'ten' },
      { id: 2, name: 'eleven' },
      { id: 1, name: 'ten' },
    ]);
    expect(seen.slice(1), 'values 10, 11, 12 in batches of two').to.deep.equal([
      'select "p".* from "products" as "p" where "p"."id" in (?, ?) limit ?',
      'select "p".* from "products" as "p" where "p"."id" in (?) limit ?',
    ]);
  });

  it('keeps unmatched rows of a LEFT join with NULLs for the joined table', async () => {
    const query = db('orders as o').leftJoin('products as p', 'p.id', 'o.product_id').select('o.*', 'p.name').orderBy('o.id') as unknown as AnyQueryBuilder;
    const rows = (await runLookupJoin(query, spec(100, 'left'), parts(100, []))) as Record<string, unknown>[];
    expect(rows.map((row) => row.name)).to.deep.equal(['ten', 'eleven', 'ten', null, null]);
  });

  it('fails with MERGE_LIMIT when a side has more rows than the bound', async () => {
    const query = db('orders as o').join('products as p', 'p.id', 'o.product_id').select('o.id') as unknown as AnyQueryBuilder;
    const failure = await runLookupJoin(query, spec(3), parts(3, [])).then(() => undefined, (error: unknown) => error);
    expect(failure).to.be.instanceOf(MergeLimitError);
  });
});
