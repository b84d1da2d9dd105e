import { expect } from 'chai';
import type { ShardKit } from '../../lib/index.js';
import { usersV2 } from '../../migrations/online/users-v2.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

// The control plane's promises on the embedded shards: a rate is a total, and a migration
// rolled back to its start copies afresh.
const target = TARGETS.find((candidate) => candidate.name === 'pglite')!;
const ROWS = 1200;

describe('online migration control on pglite', function () {
  this.timeout(120_000);
  let kit: ShardKit;

  beforeEach(async () => {
    // In-memory PGlite shards: each kit starts with empty databases.
    kit = await openFreshKit({ ...target, config: { ...target.config, onlineMigrations: [usersV2], migrations: { pollIntervalMs: 100, leaseMs: 3000 } } });
    await kit.table('users').insert(Array.from({ length: ROWS }, (_, index) => ({ id: index + 1, name: `First Last${index}`, email: `u${index}@example.com` })));
  });

  afterEach(async () => {
    await kit?.close();
  });

  async function toBackfill(): Promise<void> {
    const runner = kit.onlineMigration('users_v2');
    await runner.start();
    await runner.advance({ waitForAcksMs: 5000 });
  }

  it('--max-rate limits the copy of every shard together', async () => {
    await toBackfill();
    const rate = 1000;
    const started = performance.now();
    await kit.onlineMigration('users_v2').backfill({ maxRowsPerSecond: rate, batchSize: 100 });
    const seconds = (performance.now() - started) / 1000;
    const measured = ROWS / seconds;
    console.log(`      ${ROWS} rows over ${kit.shardNames.length} shards in ${seconds.toFixed(2)} s: ${measured.toFixed(0)} rows/s (limit ${rate})`);
    // One batch may go before the limiter; per-shard limits would have allowed 3x here.
    expect(measured).to.be.below(rate * 1.25);
  });

  it('a migration rolled back to pending and started again copies afresh', async () => {
    await toBackfill();
    const runner = kit.onlineMigration('users_v2');
    await runner.backfill();
    expect((await runner.status()).backfill.every((unit) => unit.done)).to.equal(true);
    await runner.rollback({ waitForAcksMs: 5000 });
    await runner.rollback({ waitForAcksMs: 5000 });
    expect((await runner.status()).phase).to.equal('pending');
    // Rows written while nothing dual-writes: the old copy knows nothing of them.
    await kit.table('users').insert({ id: ROWS + 1, name: 'Late Comer', email: 'late@example.com' });
    await toBackfill();
    const before = await runner.status();
    expect(before.backfill.map((unit) => [unit.rows, unit.done])).to.deep.equal(before.backfill.map(() => [0, false]));
    await runner.backfill();
    const after = await runner.status();
    expect(after.backfill.reduce((sum, unit) => sum + unit.rows, 0)).to.equal(ROWS + 1);
    expect(await kit.forShard(kit.shardFor(ROWS + 1))('users_v2').where('id', ROWS + 1).first()).to.include({ first_name: 'Late' });
  });
});
