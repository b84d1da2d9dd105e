import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';

// The shardkit command in real processes, on the default embedded topology in a fresh folder.
describe('the shardkit command', function () {
  this.timeout(180_000);
  let dataDir: string;

  const shardkit = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['bin/shardkit.js', ...args], { env: { ...process.env, SHARDKIT_DATA_DIR: dataDir, SHARDKIT_CONFIG: '' } }, (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'shardkit-cli-'));
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('migrates every shard and drives an online migration, refusing a closed gate with exit code 3', async () => {
    const migrated = await shardkit('migrate', 'latest');
    expect(migrated.code, migrated.stderr).to.equal(0);
    // Four shards that own keys and shard-5 on standby: the schema goes to all five.
    expect(migrated.stdout.match(/ok$/gm)).to.have.length(5);

    expect((await shardkit('online', 'start', 'users_v2')).code).to.equal(0);
    expect((await shardkit('online', 'advance', 'users_v2', '--wait', '5000')).code).to.equal(0);
    const early = await shardkit('online', 'advance', 'users_v2');
    expect(early.code).to.equal(3);
    expect(early.stderr).to.match(/MIGRATION_GATE.*backfill is not done/);

    const backfill = await shardkit('online', 'backfill', 'users_v2', '--max-rate', '100000');
    expect(backfill.code, backfill.stderr).to.equal(0);
    expect(backfill.stderr).to.match(/backfill users_v2 \[#+\] 100%/);
    const status = await shardkit('online', 'status', 'users_v2');
    expect(status.stdout).to.match(/users_v2\s+backfill/);
    expect(status.stdout).to.match(/shard-1\s+\d+\s+yes/);

    const usage = await shardkit('online', 'nonsense');
    expect(usage.code).to.equal(2);
    const routed = await shardkit('route', '42');
    expect(routed.stdout).to.match(/42\s+\d+\s+shard-[1-4]/);

    const plan = await shardkit('rebalance', 'plan', '--add', 'shard-5');
    expect(plan.code, plan.stderr).to.equal(0);
    expect(plan.stdout).to.match(/ring after: .*shard-5 \(1\)/);
    // ideal share 1/5, moved/ideal, and 0 slots moved between the four that stay
    expect(plan.stdout).to.match(/20\.00%\s+[01]\.\d{3}\s+0$/m);
    expect(plan.stdout).to.match(/^users\s+0\s+0\s+-\s+0$/m);
    // Not beside an online migration in progress.
    const beside = await shardkit('rebalance', 'run', '--add', 'shard-5');
    expect(beside.code).to.equal(1);
    expect(beside.stderr).to.match(/online migration\(s\) users_v2 in progress/);
    const invalid = await shardkit('rebalance', 'plan', '--add', 'shard-9');
    expect(invalid.code).to.equal(1);
    expect(invalid.stderr).to.match(/INVALID_TOPOLOGY_CHANGE[\s\S]*--add shard-9: no shard of that name in the config/);
  });

  it('rebalances the embedded shards: adds shard-5 online, and status shows its share of the ring', async () => {
    expect((await shardkit('migrate', 'latest')).code).to.equal(0);
    const moved = await shardkit('rebalance', 'run', '--add', 'shard-5', '--yes');
    expect(moved.code, moved.stderr).to.equal(0);
    expect(moved.stdout).to.match(/ring to: {3}shard-1 \(1\), shard-2 \(1\), shard-3 \(1\), shard-4 \(1\), shard-5 \(1\)/);
    expect(moved.stdout).to.match(/second copies removed: yes/);
    const after = await shardkit('status', '--json');
    const shards = (JSON.parse(after.stdout) as { shards: { shard: string; slots: number }[] }).shards;
    const share = shards.find((shard) => shard.shard === 'shard-5')!.slots / 1_048_576;
    expect(share).to.be.closeTo(0.2, 0.01);
  });
});
