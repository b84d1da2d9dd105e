import { expect } from 'chai';
import type { Knex } from 'knex';
import { type ShardKit, UnsupportedQueryError } from '../../lib/index.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const USERS = 1200;
const user = (id: number) => ({ id, name: `user ${String(id % 97).padStart(2, '0')}`, email: `u${id}@example.com` });

async function collect(source: AsyncIterable<unknown>): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for await (const row of source) rows.push(row as Record<string, unknown>);
  return rows;
}

for (const target of TARGETS) {
  describe(`scatter execution on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    /** Every user, read from the shards directly and sorted here: what one database would hold. */
    let everyone: { id: number; name: string }[];

    before(async () => {
      kit = await openFreshKit(target);
      const ids = Array.from({ length: USERS }, (_, index) => index + 1);
      for (let start = 0; start < ids.length; start += 400) await kit.table('users').insert(ids.slice(start, start + 400).map(user));
      const perShard = await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard)('users').select('id', 'name')));
      everyone = perShard.flat().map((row) => ({ id: Number(row.id), name: row.name as string }));
    });

    after(async () => {
      await kit?.close();
    });

    it('streams merged rows in order across every shard', async () => {
      const rows = await collect(kit.table('users').select('id', 'name').orderBy('name', 'desc').orderBy('id').stream());
      const expected = [...everyone].sort((a, b) => (a.name === b.name ? a.id - b.id : a.name < b.name ? 1 : -1));
      expect(rows.map((row) => Number(row.id))).to.deep.equal(expected.map((row) => row.id));
    });

    it('streams aggregates merged by group', async () => {
      const rows = await collect(kit.table('users').select('name').count('* as n').groupBy('name').orderBy('name').stream());
      expect(rows).to.have.length(97);
      expect(rows.reduce((total, row) => total + Number(row.n), 0)).to.equal(USERS);
    });

    it('releases every shard when the consumer stops early', async () => {
      for (let round = 0; round < 15; round++) {
        for await (const row of kit.table('users').select('id').orderBy('id').stream()) {
          expect(row).to.have.property('id');
          break;
        }
      }
      // Fifteen abandoned streams later, the pools still have connections to give.
      expect(await kit.table('users').whereIn('id', [1, 2, 3]).pluck('id')).to.have.length(3);
    });

    it('walks every row exactly once with keyset pagination, never using OFFSET', async () => {
      const orderBy = [{ column: 'name', direction: 'desc' as const }, { column: 'id' }];
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      const sql: string[] = [];
      const record = (query: { sql: string }) => {
        if (/users/.test(query.sql) && !/information_schema/.test(query.sql)) sql.push(query.sql);
      };
      // The primaries' own knex: kit.forShard() is an escape hatch with its own events.
      for (const shard of kit.shardNames) kit.topology.shard(shard).primary.knex.on('query', record);
      do {
        const query = kit.table('users').select('id', 'name');
        const page: { rows: Record<string, unknown>[]; nextCursor: string | null } = await kit.paginate(query, { orderBy, pageSize: 97, cursor });
        seen.push(...page.rows.map((row) => Number(row.id)));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      const expected = [...everyone].sort((a, b) => (a.name === b.name ? a.id - b.id : a.name < b.name ? 1 : -1)).map((row) => row.id);
      expect(seen).to.deep.equal(expected);
      expect(pages).to.equal(Math.ceil(USERS / 97));
      for (const shard of kit.shardNames) kit.topology.shard(shard).primary.knex.off('query', record);
      expect(sql.length, 'the shards saw the page queries').to.be.at.least(pages * kit.shardNames.length);
      expect(sql.filter((text) => /offset/i.test(text))).to.deep.equal([]);
      expect(sql.filter((text) => !/limit/i.test(text))).to.deep.equal([]);
    });

    it('refuses a cursor made for another order', async () => {
      const page = await kit.paginate(kit.table('users').select('id'), { orderBy: [{ column: 'id' }], pageSize: 10 });
      const error = await kit
        .paginate(kit.table('users').select('id'), { orderBy: [{ column: 'id', direction: 'desc' }], pageSize: 10, cursor: page.nextCursor })
        .catch((caught: unknown) => caught);
      expect(error).to.have.property('code', 'INVALID_CURSOR');
    });

    it('cancels a scatter when its AbortSignal fires', async () => {
      const controller = new AbortController();
      controller.abort(new Error('client went away'));
      const error = await kit
        .table('users', { signal: controller.signal })
        .select('id')
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).to.have.property('code', 'QUERY_CANCELLED');
    });

    it('refuses to stream what is not a select', () => {
      const builder = kit.table('users').where('id', 1).del() as unknown as Knex.QueryBuilder;
      expect(() => builder.stream()).to.not.throw();
      return collect(builder.stream()).then(
        () => expect.fail('expected a refusal'),
        (error: unknown) => expect(error).to.be.instanceOf(UnsupportedQueryError),
      );
    });
  });
}
