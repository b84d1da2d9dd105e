import { expect } from 'chai';
import type { Knex } from 'knex';
import { createShardKit, type ShardKit } from '../../lib/index.js';
import { attempt, classify, excerpt, Tally } from '../support/scatter-oracle-compare.js';
import {
  BUYERS,
  createBuyersTable,
  createItemsTable,
  createRandom,
  generateBuyers,
  generateQuery,
  generateRows,
  ORACLE_BUYERS,
  ORACLE_TABLE,
  ORACLE_TABLES,
  type QueryFamily,
  type QuerySource,
  SHARDED_TABLES,
  TABLE,
} from '../support/scatter-queries.js';
import { TARGETS } from '../support/targets.js';

// SCATTER_SEED=<n> replays a run; SCATTER_QUERIES=<n> checks more queries per target;
// SCATTER_SHOW_WRONG=<n> prints the first n wrong answers (default 3).
const SEED = Number(process.env.SCATTER_SEED ?? 20261128);
const QUERIES = Number(process.env.SCATTER_QUERIES ?? 1000);
const SHOW_WRONG = Number(process.env.SCATTER_SHOW_WRONG ?? 3);
const ROWS = 900;

for (const target of TARGETS) {
  describe(`scatter-gather equals one database on ${target.name}`, function () {
    this.timeout(180_000);
    const family: QueryFamily = target.config.shards[0]!.primary.dialect === 'mysql' ? 'mysql' : 'postgres';
    let kit: ShardKit;
    let oracle: Knex;

    before(async () => {
      const tables = { ...target.config.tables, [TABLE]: { shardKey: 'user_id' }, [BUYERS]: { shardKey: 'id' } };
      kit = await createShardKit({ ...target.config, tables });
      oracle = kit.forShard(kit.shardNames[0]!);
      const rows = generateRows(createRandom(SEED), ROWS);
      const buyers = generateBuyers(createRandom(SEED + 2));
      await Promise.all(kit.shardNames.map((shard) => createItemsTable(kit.forShard(shard), TABLE)));
      await Promise.all(kit.shardNames.map((shard) => createBuyersTable(kit.forShard(shard), BUYERS)));
      await createItemsTable(oracle, ORACLE_TABLE);
      await createBuyersTable(oracle, ORACLE_BUYERS);
      for (let start = 0; start < rows.length; start += 300) {
        const batch = rows.slice(start, start + 300);
        await kit.table(TABLE).insert(batch);
        await oracle(ORACLE_TABLE).insert(batch);
      }
      await kit.table(BUYERS).insert(buyers);
      await oracle(ORACLE_BUYERS).insert(buyers);
      const perShard = await Promise.all(kit.shardNames.map(async (shard) => Number((await kit.forShard(shard)(TABLE).count('* as n'))[0]!.n)));
      expect(Math.min(...perShard), 'every shard holds rows').to.be.greaterThan(100);
      const buyersPerShard = await Promise.all(kit.shardNames.map(async (shard) => Number((await kit.forShard(shard)(BUYERS).count('* as n'))[0]!.n)));
      expect(Math.min(...buyersPerShard), 'every shard holds buyers').to.be.greaterThan(10);
    });

    after(async () => {
      if (!kit) return;
      // Close the kit even when a shard is gone, or its open connections keep mocha from exiting.
      try {
        await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard).schema.dropTableIfExists(TABLE).dropTableIfExists(BUYERS)));
        await oracle.schema.dropTableIfExists(ORACLE_TABLE).dropTableIfExists(ORACLE_BUYERS);
      } finally {
        await kit.close();
      }
    });

    it(`answers ${QUERIES} random queries as the unsharded tables do, or refuses them (seed ${SEED})`, async () => {
      const random = createRandom(SEED + 1);
      const sharded = Object.assign((table: string) => kit.table(table), { raw: oracle.raw.bind(oracle) }) as QuerySource;
      const tally = new Tally();
      for (let index = 0; index < QUERIES; index++) {
        const query = generateQuery(random, family);
        const expected = await attempt(() => query.build(oracle, ORACLE_TABLES));
        const actual = await attempt(() => query.build(sharded, SHARDED_TABLES));
        tally.record(index, query, expected, classify(expected, actual, query.ordered), () => ({
          sql: String(query.build(oracle, ORACLE_TABLES).toString()).slice(0, 400),
          sharded: excerpt(actual, query.ordered),
          oracle: excerpt(expected, query.ordered),
        }));
      }
      const report = tally.report(target.name, SEED, SHOW_WRONG);
      console.log(report.join('\n'));
      expect(tally.unexpectedOracleFailures, 'the oracle answers every query meant to be valid SQL').to.deep.equal([]);
      expect(tally.total, 'every query is counted once').to.equal(QUERIES);
      expect(tally.counts.equal + tally.counts.refused + tally.counts.wrong).to.equal(QUERIES);
      expect(tally.counts.wrong, `wrong answers on ${target.name} (the report above lists them by construct)`).to.equal(0);
    });
  });
}
