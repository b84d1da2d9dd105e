import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import knexModule from 'knex';
import ClientPgLite from 'knex-pglite';
import { PGlite } from '@electric-sql/pglite';
import { createShardKit, SchemaMigrator, type ShardKitConfig } from '../../lib/index.js';

/**
 * An existing knex project adopts shardkit: its databases were migrated by plain knex (same
 * folder, same knex_migrations table); shardkit must keep that history, run only what is new,
 * and offer knex's other commands. A database migrated by shardkit 0.1 (names without their
 * extension) is converted. Two PGlite shards in folders of their own.
 */
describe('adopting databases that plain knex migrated', function () {
  this.timeout(120_000);
  let root: string;
  let migrations: string;
  let config: ShardKitConfig;

  const widgets = "export const up = (knex) => knex.schema.createTable('widgets', (t) => { t.integer('id').primary(); t.string('name'); });\nexport const down = (knex) => knex.schema.dropTable('widgets');\n";
  const gadgets = "export const up = (knex) => knex.schema.createTable('gadgets', (t) => t.integer('id').primary());\nexport const down = (knex) => knex.schema.dropTable('gadgets');\n";

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shardkit-knex-'));
    migrations = join(root, 'migrations');
    await writeFile(join(root, 'package.json'), '{"type":"module"}');
    await import('node:fs/promises').then((fs) => fs.mkdir(migrations));
    await writeFile(join(migrations, '20240101000000_widgets.js'), widgets);
    // Plain knex migrates both databases first, as the project did before shardkit.
    for (const name of ['a', 'b']) {
      const pglite = new PGlite(join(root, name));
      const db = knexModule.knex({ client: ClientPgLite as never, dialect: 'postgres', connection: { pglite } } as never);
      await db.migrate.latest({ directory: migrations });
      await db.destroy();
    }
    config = {
      shards: ['a', 'b'].map((name) => ({ name, primary: { dialect: 'pglite' as const, connection: { dataDir: join(root, name) } } })),
      tables: { widgets: { shardKey: 'id' } },
      migrations: { directory: migrations },
      seeds: { directory: join(root, 'seeds') },
    };
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps knex history: status lists it, latest applies only the new file, up/down/current-version/unlock work', async () => {
    await writeFile(join(migrations, '20240201000000_gadgets.js'), gadgets);
    const kit = await createShardKit(config);
    try {
      const migrator = new SchemaMigrator(kit);
      const status = await migrator.status();
      expect(status).to.deep.equal([
        { shard: 'a', applied: ['20240101000000_widgets.js'], pending: ['20240201000000_gadgets.js'] },
        { shard: 'b', applied: ['20240101000000_widgets.js'], pending: ['20240201000000_gadgets.js'] },
      ]);
      const report = await migrator.latest();
      expect(report.map((entry) => entry.applied)).to.deep.equal([
        ['20240101000000_widgets.js', '20240201000000_gadgets.js'],
        ['20240101000000_widgets.js', '20240201000000_gadgets.js'],
      ]);
      expect(await migrator.currentVersion()).to.deep.equal([
        { shard: 'a', version: '20240201000000' },
        { shard: 'b', version: '20240201000000' },
      ]);
      await migrator.down({ shards: ['b'] });
      expect((await migrator.status({ shards: ['b'] }))[0]!.pending).to.deep.equal(['20240201000000_gadgets.js']);
      await migrator.up({ shards: ['b'] });
      expect((await migrator.status({ shards: ['b'] }))[0]!.pending).to.deep.equal([]);
      // A lock left by a killed run: knex refuses to migrate until it is released.
      await kit.forShard('a')('knex_migrations_lock').update({ is_locked: 1 });
      const locked = await migrator.latest().catch((error: unknown) => error);
      expect(String((locked as Error).message)).to.match(/locked/i);
      await migrator.unlock();
      await migrator.latest();
    } finally {
      await kit.close();
    }
  });

  it('converts names shardkit 0.1 recorded without their extension', async () => {
    const kit = await createShardKit(config);
    try {
      await kit.forShard('a')('knex_migrations').where('name', '20240101000000_widgets.js').update({ name: '20240101000000_widgets' });
      const status = await new SchemaMigrator(kit).status({ shards: ['a'] });
      expect(status[0]!.applied).to.include('20240101000000_widgets.js');
      expect(status[0]!.pending).to.deep.equal([]);
    } finally {
      await kit.close();
    }
  });

  it('runs seeds on every shard, each keeping the rows its shard owns', async () => {
    await import('node:fs/promises').then((fs) => fs.mkdir(join(root, 'seeds'), { recursive: true }));
    await writeFile(
      join(root, 'seeds', '01_widgets.js'),
      "export async function seed(knex) {\n  const { owns } = knex.userParams;\n  await knex('widgets').del();\n  await knex('widgets').insert([1, 2, 3, 4, 5, 6].filter((id) => owns(id)).map((id) => ({ id, name: 'w' + id })));\n}\n",
    );
    const kit = await createShardKit(config);
    try {
      const ran = await new SchemaMigrator(kit).seed();
      expect(ran).to.deep.equal([
        { shard: 'a', files: ['01_widgets.js'] },
        { shard: 'b', files: ['01_widgets.js'] },
      ]);
      const ids = (await kit.table('widgets').select('id').orderBy('id')).map((row: { id: number }) => row.id);
      expect(ids).to.deep.equal([1, 2, 3, 4, 5, 6]);
      for (const shard of ['a', 'b']) for (const row of await kit.forShard(shard)('widgets').select('id')) expect(kit.shardFor(row.id)).to.equal(shard);
    } finally {
      await kit.close();
    }
  });

  it('the CLI lists the knex history and does not crash on it', async () => {
    const configFile = join(root, 'shards.config.mjs');
    await writeFile(configFile, `export default ${JSON.stringify(config)};\n`);
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['bin/shardkit.js', 'migrate', 'list', '--config', configFile], (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code) : 0, stdout, stderr }),
      );
    });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/20240101000000_widgets\.js\s+applied\s+applied/);
  });
});
