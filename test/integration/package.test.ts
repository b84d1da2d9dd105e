import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const REPO = resolve('.');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * The package as a user gets it: `npm pack`, then `npm install <tarball>` into a fresh
 * application, which imports it (ESM and CommonJS), type-checks against it under strict, runs a
 * query on the embedded default, and runs `npx shardkit help`.
 */
describe('the packed package in a fresh application', function () {
  this.timeout(300_000);
  let work: string;
  let app: string;
  let tarball: string;
  let files: string[];
  let installLog: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'shardkit-pack-'));
    // npm test built dist/ already; prepack would build it again.
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(work, packed.filename);
    files = packed.files.map((file) => file.path);
    app = join(work, 'app');
    await run('mkdir', ['-p', app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
    installLog = installed.stdout + installed.stderr;
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('ships the build, README, LICENSE and docs, and nothing of tests, CI or scratch files', () => {
    expect(files).to.include.members(['dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/cli/main.js', 'bin/shardkit.js', 'README.md', 'LICENSE', 'package.json']);
    expect(files.some((file) => file.startsWith('docs/'))).to.equal(true);
    const unwanted = files.filter((file) => /^(test|\.ci|scripts|lib|\.scratch|\.cluster|\.shardkit)\/|^t\d+\.ts$|\.map$/.test(file));
    expect(unwanted).to.deep.equal([]);
  });

  it('installs without an engine warning on this Node', () => {
    expect(installLog).to.not.match(/EBADENGINE/);
  });

  it('is imported as an ES module and required from CommonJS, and runs a query on the embedded default', async () => {
    await writeFile(
      join(app, 'esm.mjs'),
      [
        "import { createShardKit, ShardKitError } from 'shardkit';",
        "const kit = await createShardKit({ shards: [{ name: 's1', primary: { dialect: 'pglite', connection: {} } }, { name: 's2', primary: { dialect: 'pglite', connection: {} } }], tables: { notes: { shardKey: 'id' } } });",
        "for (const shard of kit.shardNames) await kit.forShard(shard).schema.createTable('notes', (t) => { t.integer('id').primary(); t.string('body'); });",
        "await kit.table('notes').insert([{ id: 1, body: 'a' }, { id: 2, body: 'b' }, { id: 3, body: 'c' }]);",
        "const rows = await kit.table('notes').select('id').orderBy('id');",
        "console.log(JSON.stringify({ rows: rows.map((row) => row.id), typed: typeof ShardKitError }));",
        'await kit.close();',
      ].join('\n'),
    );
    const esm = await run(process.execPath, ['esm.mjs'], { cwd: app });
    expect(JSON.parse(esm.stdout.trim())).to.deep.equal({ rows: [1, 2, 3], typed: 'function' });
    await writeFile(join(app, 'cjs.cjs'), "const shardkit = require('shardkit');\nconsole.log(typeof shardkit.createShardKit, typeof shardkit.HashRing);\n");
    const cjs = await run(process.execPath, ['cjs.cjs'], { cwd: app });
    expect(cjs.stdout.trim()).to.equal('function function');
  });

  it('type-checks an application under strict', async () => {
    await writeFile(
      join(app, 'app.ts'),
      [
        "import { createShardKit, type Knex, type ShardKit, type ShardKitConfig, ShardKitError } from 'shardkit';",
        "const config: ShardKitConfig = { shards: [{ name: 's1', primary: { dialect: 'pglite', connection: {} } }], tables: { notes: { shardKey: 'id' } } };",
        'export async function notes(): Promise<number[]> {',
        '  const kit: ShardKit = await createShardKit(config);',
        '  const db: Knex = kit.forShard(\'s1\');',
        "  await db.schema.createTable('notes', (table) => table.integer('id'));",
        "  const rows: { id: number }[] = await kit.table('notes').select('id');",
        '  await kit.close();',
        '  return rows.map((row) => row.id);',
        '}',
        'export const isShardKitError = (error: unknown): boolean => error instanceof ShardKitError;',
      ].join('\n'),
    );
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, types: ['node'], skipLibCheck: true }, files: ['app.ts'] }),
    );
    // @types/node comes from the repository's own install: the application needs nothing more to compile.
    await run('mkdir', ['-p', join(app, 'node_modules', '@types')]);
    await run('cp', ['-r', join(REPO, 'node_modules', '@types', 'node'), join(app, 'node_modules', '@types', 'node')]);
    const checked = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app }).catch((error: { stdout: string }) => error);
    expect((checked as { stdout?: string }).stdout ?? '').to.equal('');
  });

  it('runs npx shardkit help from the installed package', async () => {
    const help = await run('npx', ['--no-install', 'shardkit', 'help'], { cwd: app });
    expect(help.stdout).to.match(/Usage: shardkit/);
    expect(help.stdout).to.match(/migrate\s/);
    expect(await readdir(join(app, 'node_modules', 'shardkit', 'dist', 'lib'))).to.include('index.js');
  });
});
