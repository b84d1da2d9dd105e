import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const REPO = resolve('.');
/** Inside the package, so that `import ... from 'shardkit'` resolves to the package itself (dist/). */
const FOLDER = join(REPO, '.docs-examples');

interface Example {
  source: string;
  line: number;
  code: string;
}

/** Every ```ts block of README.md and docs/*.md, where it stands. */
async function examples(): Promise<Example[]> {
  const files = ['README.md', ...(await readdir(join(REPO, 'docs'))).filter((file) => file.endsWith('.md')).map((file) => `docs/${file}`)];
  const found: Example[] = [];
  for (const source of files) {
    const lines = (await readFile(join(REPO, source), 'utf8')).split('\n');
    for (let index = 0; index < lines.length; index++) {
      if (lines[index] !== '```ts') continue;
      const end = lines.indexOf('```', index + 1);
      found.push({ source, line: index + 1, code: lines.slice(index + 1, end).join('\n') });
      index = end;
    }
  }
  return found;
}

const fileOf = (example: Example) => `${example.source.replace(/[/.]/g, '_')}_${example.line}.ts`;

describe('the TypeScript examples of README.md and docs/', function () {
  this.timeout(300_000);
  let blocks: Example[];

  before(async () => {
    blocks = await examples();
    await rm(FOLDER, { recursive: true, force: true });
    await mkdir(FOLDER);
    for (const example of blocks) await writeFile(join(FOLDER, fileOf(example)), `${example.code}\nexport {};\n`);
    await writeFile(
      join(FOLDER, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noUncheckedIndexedAccess: true, noEmit: true, types: ['node'], skipLibCheck: true },
        include: ['*.ts'],
      }),
    );
  });

  after(async () => {
    await rm(FOLDER, { recursive: true, force: true });
  });

  it('are there to check', () => {
    expect(blocks.length).to.be.at.least(5);
  });

  it('type-check under strict against the package', async () => {
    const outcome = await run(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(FOLDER, 'tsconfig.json')], { cwd: FOLDER }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(outcome, outcome).to.equal('');
  });

  it('run on the embedded default with the shipped schema, each in fresh databases', async () => {
    const failures: string[] = [];
    // One at a time: each opens five PGlite shards, CPU work that on a slow 2-core machine ran past a shard's 10 s connection wait when two ran together.
    const runOne = async (example: Example) => {
      const dataDir = await mkdtemp(join(tmpdir(), 'shardkit-docs-'));
      try {
        await run(process.execPath, ['--import', 'tsx', join(FOLDER, fileOf(example))], {
          cwd: REPO,
          env: { ...process.env, SHARDKIT_DATA_DIR: dataDir, SHARDKIT_CONFIG: '' },
          maxBuffer: 16 * 1024 * 1024,
        });
      } catch (error) {
        failures.push(`${example.source}:${example.line}: ${String((error as { stderr?: string }).stderr ?? error).slice(0, 600)}`);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    };
    for (const example of blocks) await runOne(example);
    expect(failures, failures.join('\n\n')).to.deep.equal([]);
  });
});
