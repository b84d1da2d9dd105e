import { expect } from 'chai';
import type { Knex } from 'knex';
import { QueryTimeoutError, type ShardKit, ShardUnavailableError } from '../../lib/index.js';
import { ServerControl } from '../../scripts/local-cluster.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

/**
 * The backfill's bulk write (dialect insertMissing: COPY on PostgreSQL, falling back to an
 * insert-if-absent; JSON on PGlite) against the rows themselves: what it stores equals the source
 * row as the server prints it, every type of value included, and a row already in the target is
 * never overwritten, even when it is one row of a batch that COPY takes.
 */
for (const target of TARGETS.filter((candidate) => candidate.name !== 'mariadb cluster')) {
  describe(`bulk insert-if-absent on ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    let db: Knex;
    let shard: string;
    const statements: string[] = [];
    const record = (query: { sql: string }) => statements.push(query.sql);

    const COLUMNS = `id bigint primary key, name text, note text, at timestamptz, ats timestamptz[], raw bytea, big bigint, flag boolean, score double precision, doc jsonb`;
    const SOURCE_ROWS = `
      (1, 'plain', null, '2026-12-01 19:29:18.576917+00', array['2026-12-01 19:29:18.576917+00'::timestamptz, null], '\\x00ff10', 9007199254740993, true, 1.5, null),
      (2, 'quote " comma , newline
line', '', '1999-12-31 23:59:59.999999+05:45', null, '', -9007199254740993, false, 'NaN', null),
      (3, 'back\\slash \\N tab	end', 'x', '0044-03-15 12:00:00+00 BC', '{}', null, 0, null, '-Infinity', null),
      (4, 'will not be overwritten', null, now(), null, null, 4, true, 4, null)`;

    before(async () => {
      kit = await openFreshKit({ ...target, config: { ...target.config, timeouts: { queryMs: 1500 } } });
      shard = kit.shardNames[0]!;
      db = kit.topology.shard(shard).primary.knex;
      await db.raw('drop table if exists bulk_source, bulk_target');
      await db.raw(`create table bulk_source (${COLUMNS})`);
      await db.raw(`create table bulk_target (${COLUMNS})`);
      db.on('query', record);
    });

    after(async () => {
      db?.off('query', record);
      await db?.raw('drop table if exists bulk_source, bulk_target');
      await kit?.close();
    });

    beforeEach(async () => {
      await db.raw('truncate bulk_source, bulk_target');
      statements.length = 0;
    });

    const readSource = (where = 'true') => db('bulk_source').whereRaw(where).orderBy('id').options(kit.topology.dialectOf(shard).exactReads(db.client.config.connection));
    const printed = async (table: string) => (await db.raw(`select t::text as row from ${table} t order by id`)).rows.map((row: { row: string }) => row.row) as string[];

    it('stores every value as the source holds it, microseconds, arrays, bytes, big integers, empty strings and NULLs included', async () => {
      await db.raw(`insert into bulk_source values ${SOURCE_ROWS}`);
      await kit.topology.dialectOf(shard).insertMissing(db, 'bulk_target', await readSource(), ['id']);
      expect(await printed('bulk_target')).to.deep.equal(await printed('bulk_source'));
      // Rows 2-4 by COPY; row 1, which holds an array (an array column or json, CSV cannot tell), by the insert-if-absent.
      if (target.name === 'postgres cluster') expect([statements.filter((sql) => /^COPY /i.test(sql)).length, statements.filter((sql) => /ON CONFLICT/i.test(sql)).length]).to.deep.equal([1, 1]);
    });

    it('never overwrites a row the target already holds, and still copies the rest of its batch', async () => {
      await db.raw(`insert into bulk_source values ${SOURCE_ROWS}`);
      await db.raw(`insert into bulk_target (id, name) values (4, 'newer, written by the application')`);
      await kit.topology.dialectOf(shard).insertMissing(db, 'bulk_target', await readSource(), ['id']);
      const copied = await printed('bulk_target');
      const source = await printed('bulk_source');
      expect(copied.slice(0, 3)).to.deep.equal(source.slice(0, 3));
      expect((await db('bulk_target').where('id', 4).first('name')).name).to.equal('newer, written by the application');
      if (target.name === 'postgres cluster') {
        // COPY met the existing row and stored nothing; the batch went again as an insert-if-absent.
        expect(statements.some((sql) => /^COPY /i.test(sql))).to.equal(true);
        expect(statements.some((sql) => /ON CONFLICT/i.test(sql))).to.equal(true);
      }
    });

    if (target.name === 'postgres cluster') {
      it('fails a COPY to a server that stopped answering within the deadline, with a typed error', async () => {
        await db.raw(`insert into bulk_source values ${SOURCE_ROWS}`);
        const rows = await readSource('id > 1');
        const server = new ServerControl(kit.topology.shard(shard).primary);
        await server.pause();
        const started = performance.now();
        try {
          const outcome = await kit.topology.dialectOf(shard).insertMissing(db, 'bulk_target', rows, ['id']).then(() => 'stored', (error: unknown) => error);
          const ms = performance.now() - started;
          console.log(`      COPY to a stopped server failed after ${ms.toFixed(0)} ms (deadline 1500 ms)`);
          expect(outcome).to.satisfy((error: unknown) => error instanceof QueryTimeoutError || error instanceof ShardUnavailableError);
          expect(ms).to.be.below(1500 + 500);
        } finally {
          await server.resume();
        }
        // The connection it gave up on is gone; the next batch goes in.
        await kit.topology.dialectOf(shard).insertMissing(db, 'bulk_target', rows, ['id']);
        expect((await printed('bulk_target')).length).to.equal(3);
      });
    }

    it('writes a batch holding a JSON value without COPY, as the insert-if-absent always did', async () => {
      await db.raw(`insert into bulk_source (id, name, doc) values (10, 'with a document', '{"a": [1, "two"], "b": null}')`);
      await kit.topology.dialectOf(shard).insertMissing(db, 'bulk_target', await readSource(), ['id']);
      expect(await printed('bulk_target')).to.deep.equal(await printed('bulk_source'));
      expect(statements.some((sql) => /^COPY /i.test(sql))).to.equal(false);
    });
  });
}
