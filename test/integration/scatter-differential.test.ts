import { expect } from 'chai';
import type { Knex } from 'knex';
import { createShardKit, type ShardKit } from '../../lib/index.js';
import {
  createItemsTable,
  createRandom,
  generateQuery,
  generateRows,
  ORACLE_TABLE,
  type QuerySource,
  TABLE,
} from '../support/scatter-queries.js';
import { TARGETS } from '../support/targets.js';

// SCATTER_SEED=<n> replays a run; SCATTER_QUERIES=<n> checks more queries.
const SEED = Number(process.env.SCATTER_SEED ?? 20261128);
const QUERIES = Number(process.env.SCATTER_QUERIES ?? 220);
const ROWS = 900;

/** Equal as results: same types and values; floats (sums and averages of DOUBLE) within 1e-9. */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b)) return a === b;
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((value, index) => sameValue(value, b[index]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => sameValue((a as never)[key], (b as never)[key]));
  }
  return a === b;
}

/** Rows of an unordered result, in a canonical order. */
function canonical(result: unknown): unknown {
  if (!Array.isArray(result)) return result;
  return [...result].sort((x, y) => {
    const a = JSON.stringify(x);
    const b = JSON.stringify(y);
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

for (const target of TARGETS) {
  describe(`scatter-gather equals one database on ${target.name}`, function () {
    this.timeout(120_000);
    let kit: ShardKit;
    let oracle: Knex;

    before(async () => {
      kit = await createShardKit({ ...target.config, tables: { ...target.config.tables, [TABLE]: { shardKey: 'user_id' } } });
      oracle = kit.forShard(kit.shardNames[0]!);
      const rows = generateRows(createRandom(SEED), ROWS);
      await Promise.all(kit.shardNames.map((shard) => createItemsTable(kit.forShard(shard), TABLE)));
      await createItemsTable(oracle, ORACLE_TABLE);
      for (let start = 0; start < rows.length; start += 300) {
        const batch = rows.slice(start, start + 300);
        await kit.table(TABLE).insert(batch);
        await oracle(ORACLE_TABLE).insert(batch);
      }
      const perShard = await Promise.all(kit.shardNames.map(async (shard) => Number((await kit.forShard(shard)(TABLE).count('* as n'))[0]!.n)));
      expect(Math.min(...perShard), 'every shard holds rows').to.be.greaterThan(100);
    });

    after(async () => {
      if (kit) {
        await Promise.all(kit.shardNames.map((shard) => kit.forShard(shard).schema.dropTableIfExists(TABLE)));
        await oracle.schema.dropTableIfExists(ORACLE_TABLE);
        await kit.close();
      }
    });

    it(`answers ${QUERIES} random queries exactly as the unsharded table does (seed ${SEED})`, async () => {
      const random = createRandom(SEED + 1);
      let checked = 0;
      for (let index = 0; index < QUERIES; index++) {
        const query = generateQuery(random);
        const expected = await query.build(oracle, ORACLE_TABLE);
        const sharded = Object.assign((table: string) => kit.table(table), { raw: oracle.raw.bind(oracle) }) as QuerySource;
        const actual = await query.build(sharded, TABLE).catch((error: Error) => error);
        const context = `query ${index} of seed ${SEED} (replay: SCATTER_SEED=${SEED}): ${query.description}`;
        if (actual instanceof Error) throw new Error(`${context}\n  failed: ${actual.message}`);
        const [left, right] = query.ordered ? [actual, expected] : [canonical(actual), canonical(expected)];
        if (!sameValue(left, right)) {
          throw new Error(`${context}\n  sharded: ${JSON.stringify(left).slice(0, 600)}\n  oracle:  ${JSON.stringify(right).slice(0, 600)}`);
        }
        checked++;
      }
      expect(checked).to.equal(QUERIES);
    });
  });
}
