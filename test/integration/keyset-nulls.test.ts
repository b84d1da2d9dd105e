import { expect } from 'chai';
import type { Knex } from 'knex';
import { createShardKit, type KeysetKey, type ShardKit } from '../../lib/index.js';
import { TARGETS } from '../support/targets.js';

const TABLE = 'keyset_nulls';
/** The same rows in one unsharded table: the order one database gives is the expected walk. */
const ORACLE_TABLE = 'keyset_nulls_oracle';
const ROWS = 420;

/** Many NULLs and duplicates in both nullable columns, spread over ids so that every page boundary lands somewhere new. */
function rowOf(id: number): { id: number; a: number | null; b: string | null } {
  const a = id % 5 < 2 ? null : (id * 7) % 6;
  const b = id % 3 === 0 ? null : `b${(id * 11) % 4}`;
  return { id, a, b };
}

const ORDERINGS: { name: string; orderBy: KeysetKey[]; pageSize: number }[] = [
  { name: 'a nullable key ascending', orderBy: [{ column: 'a' }, { column: 'id' }], pageSize: 7 },
  { name: 'a nullable key descending', orderBy: [{ column: 'a', direction: 'desc' }, { column: 'id' }], pageSize: 9 },
  { name: 'two nullable keys in mixed directions', orderBy: [{ column: 'a' }, { column: 'b', direction: 'desc' }, { column: 'id' }], pageSize: 5 },
  {
    name: 'two nullable keys the other way round, id descending',
    orderBy: [{ column: 'b', direction: 'desc' }, { column: 'a' }, { column: 'id', direction: 'desc' }],
    pageSize: 11,
  },
  { name: 'every row one page at a time', orderBy: [{ column: 'b' }, { column: 'a', direction: 'desc' }, { column: 'id' }], pageSize: 1 },
];

async function createTable(db: Knex, table: string): Promise<void> {
  await db.schema.dropTableIfExists(table);
  await db.schema.createTable(table, (columns) => {
    columns.integer('id').primary();
    columns.integer('a').nullable();
    columns.string('b', 8).nullable();
  });
}

for (const target of TARGETS) {
  describe(`keyset pagination over nullable sort keys on ${target.name}`, function () {
    this.timeout(120_000);
    let kit: ShardKit;
    let oracle: Knex;

    before(async () => {
      kit = await createShardKit({ ...target.config, tables: { ...target.config.tables, [TABLE]: { shardKey: 'id' } } });
      oracle = kit.forShard(kit.shardNames[0]!);
      await Promise.all(kit.shardNames.map((shard) => createTable(kit.forShard(shard), TABLE)));
      await createTable(oracle, ORACLE_TABLE);
      const rows = Array.from({ length: ROWS }, (_, index) => rowOf(index + 1));
      for (let start = 0; start < rows.length; start += 200) {
        const batch = rows.slice(start, start + 200);
        await kit.table(TABLE).insert(batch);
        await oracle(ORACLE_TABLE).insert(batch);
      }
      const perShard = await Promise.all(kit.shardNames.map(async (shard) => Number((await kit.forShard(shard)(TABLE).count('* as n'))[0]!.n)));
      expect(perShard.reduce((total, count) => total + count, 0)).to.equal(ROWS);
      expect(Math.min(...perShard), 'every shard holds rows').to.be.greaterThan(50);
    });

    after(async () => {
      if (kit) {
        await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard).schema.dropTableIfExists(TABLE)));
        await oracle?.schema.dropTableIfExists(ORACLE_TABLE);
        await kit.close();
      }
    });

    for (const { name, orderBy, pageSize } of ORDERINGS) {
      it(`walks ${name} exactly as one ordered query returns it (pages of ${pageSize})`, async () => {
        let expected = oracle(ORACLE_TABLE).select('id');
        for (const key of orderBy) expected = expected.orderBy(key.column, key.direction ?? 'asc');
        const expectedIds = (await expected).map((row: { id: unknown }) => Number(row.id));
        expect(expectedIds).to.have.length(ROWS);

        const seen: number[] = [];
        const pageEnds: Record<string, unknown>[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: { rows: Record<string, unknown>[]; nextCursor: string | null } = await kit.paginate(kit.table(TABLE).select('id', 'a', 'b'), {
            orderBy,
            pageSize,
            cursor,
          });
          expect(page.rows.length, `page ${pages + 1}`).to.be.at.most(pageSize);
          seen.push(...page.rows.map((row) => Number(row.id)));
          if (page.rows.length > 0) pageEnds.push(page.rows.at(-1)!);
          cursor = page.nextCursor;
          pages++;
        } while (cursor && pages <= ROWS + 1);

        expect(seen.length, 'rows walked').to.equal(ROWS);
        expect(new Set(seen).size, 'no row repeated').to.equal(ROWS);
        expect(seen).to.deep.equal(expectedIds);
        expect(pages).to.equal(Math.ceil(ROWS / pageSize));
        // The walk crossed NULLs at page boundaries: cursors carried them.
        expect(pageEnds.some((row) => row.a === null || row.b === null), 'a page ended on a NULL').to.equal(true);
      });
    }

    it('refuses a cursor holding NULLs when it is used with another sort order', async () => {
      const orderBy: KeysetKey[] = [{ column: 'a' }, { column: 'id' }];
      let cursor: string | null = null;
      // Walk to a page that ends on a NULL.
      for (let pages = 0; pages < ROWS; pages++) {
        const page: { rows: Record<string, unknown>[]; nextCursor: string | null } = await kit.paginate(kit.table(TABLE).select('id', 'a'), { orderBy, pageSize: 10, cursor });
        cursor = page.nextCursor;
        if (!cursor || page.rows.at(-1)!.a === null) break;
      }
      expect(cursor).to.be.a('string');
      const error = await kit
        .paginate(kit.table(TABLE).select('id', 'a'), { orderBy: [{ column: 'a', direction: 'desc' }, { column: 'id' }], pageSize: 10, cursor })
        .catch((caught: unknown) => caught);
      expect(error).to.have.property('code', 'INVALID_CURSOR');
    });
  });
}
