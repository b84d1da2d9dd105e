import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { createShardKit, SchemaMigrationError, SchemaMigrator, type ShardKit } from '../../lib/index.js';
import { TARGETS } from '../support/targets.js';

const TABLE = 'shardkit_test_migrations';

for (const target of TARGETS) {
  describe(`schema migrations on every shard of ${target.name}`, function () {
    this.timeout(60_000);
    let kit: ShardKit;
    let directory: string;

    before(async () => {
      kit = await createShardKit(target.config);
      directory = await mkdtemp(join(tmpdir(), 'shardkit-migrations-'));
      await writeFile(
        join(directory, '001_first.mjs'),
        "export const up = (knex) => knex.schema.createTable('migrated_one', (t) => t.integer('id'));\nexport const down = (knex) => knex.schema.dropTable('migrated_one');\n",
      );
      await writeFile(
        join(directory, '002_second.mjs'),
        "export const up = (knex) => knex.schema.createTable('migrated_two', (t) => t.integer('id'));\nexport const down = (knex) => knex.schema.dropTable('migrated_two');\n",
      );
      for (const shard of kit.shardNames) {
        const db = kit.forShard(shard);
        for (const table of ['migrated_one', 'migrated_two', TABLE, `${TABLE}_lock`]) await db.schema.dropTableIfExists(table);
      }
    });

    after(async () => {
      for (const shard of kit.shardNames) {
        const db = kit.forShard(shard);
        for (const table of ['migrated_one', 'migrated_two', TABLE, `${TABLE}_lock`]) await db.schema.dropTableIfExists(table);
      }
      await kit.close();
      await rm(directory, { recursive: true, force: true });
    });

    it('stops at a shard that fails, reports every shard, and resumes on the next run', async () => {
      const migrator = new SchemaMigrator(kit, { directory, tableName: TABLE, concurrency: 1 });
      const [first, failing] = kit.shardNames as [string, string];
      // The second migration cannot run on one shard: its table is already there.
      await kit.forShard(failing).schema.createTable('migrated_two', (t) => t.integer('id'));

      const error = await migrator.latest().catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(SchemaMigrationError);
      const report = (error as SchemaMigrationError).report;
      expect(report.find((entry) => entry.shard === failing)?.error?.code).to.equal('QUERY_FAILED');
      expect(report.find((entry) => entry.shard === first)?.applied).to.deep.equal(['001_first.mjs', '002_second.mjs']);
      // PostgreSQL runs a batch in one transaction, so the failing shard keeps none of it.
      expect(['001_first.mjs', '002_second.mjs'].slice(0, report.find((entry) => entry.shard === failing)?.applied.length)).to.deep.equal(
        report.find((entry) => entry.shard === failing)?.applied,
      );
      expect(report.find((entry) => entry.shard === failing)?.applied).to.not.include('002_second.mjs');

      await kit.forShard(failing).schema.dropTable('migrated_two');
      const resumed = await migrator.latest();
      expect(resumed.map((entry) => entry.applied)).to.deep.equal(kit.shardNames.map(() => ['001_first.mjs', '002_second.mjs']));
      const status = await migrator.status();
      expect(status.every((entry) => entry.pending.length === 0)).to.equal(true);
    });
  });
}
