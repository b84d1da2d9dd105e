import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);

// In a fresh process, so that nothing another test loaded counts.
const SCRIPT = `
import { createRequire } from 'node:module';
import { createShardKit } from './lib/index.js';
const kit = await createShardKit({
  shards: [{ name: 'only', primary: { dialect: 'pglite', connection: {} } }],
  tables: { users: { shardKey: 'id' } },
});
await kit.forShard('only').raw('select 1');
await kit.close();
const loaded = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({
  pg: loaded.some((file) => /node_modules[\\\\/]pg[\\\\/]/.test(file)),
  mysql2: loaded.some((file) => /node_modules[\\\\/]mysql2[\\\\/]/.test(file)),
  knex: loaded.some((file) => /node_modules[\\\\/]knex[\\\\/]/.test(file)),
}));
`;

describe('driver loading', function () {
  this.timeout(60_000);

  it('a PGlite-only kit never loads pg or mysql2', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      cwd: new URL('../..', import.meta.url).pathname,
    });
    const loaded = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(loaded).to.deep.equal({ pg: false, mysql2: false, knex: true });
  });
});
