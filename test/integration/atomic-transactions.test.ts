import { execFile, spawn } from 'node:child_process';
import { expect } from 'chai';
import {
  type ShardKit,
  TransactionAbortedError,
  type TwoPhaseEvent,
  TwoPhaseUnavailableError,
  UnsupportedQueryError,
} from '../../lib/index.js';
import { holdConnection } from '../../lib/knex/connections.js';
import { DECISIONS_TABLE } from '../../lib/transactions/decision-log.js';
import { deadlineOf } from '../../lib/transactions/transaction-ids.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CONFIGS: Record<string, string> = { 'postgres cluster': 'shards.cluster.config.ts', 'mariadb cluster': 'shards.cluster.config.ts#mariadb' };

/** Two user ids whose rows live on different shards. */
function twoShards(kit: ShardKit): [number, number] {
  const owner = (id: number) => kit.topology.ownerOf(id).name;
  return [1, [...Array(100).keys()].map((n) => n + 2).find((id) => owner(id) !== owner(1))!];
}

/** Which of the two users hold order `id`, read from their shards directly. */
async function holders(kit: ShardKit, users: readonly number[], id: number): Promise<number> {
  let found = 0;
  for (const user of users) found += (await kit.forKey(user)('orders').where({ user_id: user, id })).length;
  return found;
}

/** Runs the crash worker until it reports the step, then kills it with SIGKILL: the transaction's id. */
function killAt(config: string, first: number, count: number, step: string): Promise<{ gtrid: string; done: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/two-phase-worker.ts', config, String(first), String(count), step], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const at = /AT \S+ (\S+)\n/.exec(output);
      if (at) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => {
      const at = /AT \S+ (\S+)\n/.exec(output);
      if (!at || signal !== 'SIGKILL') reject(new Error(`the worker exited (${code ?? signal}) before ${step}: ${output.slice(-300)}`));
      else resolve({ gtrid: at[1]!, done: output.split('\n').filter((line) => line.startsWith('DONE')).length });
    });
  });
}

/** The shardkit command on a cluster config. */
function shardkit(config: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/shardkit.js', '--config', config, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`atomic transactions on ${target.name}`, function () {
    this.timeout(240_000);
    let kit: ShardKit;
    let users: [number, number];

    beforeEach(async () => {
      kit = await openFreshKit({ ...target, config: { ...target.config, transactions: { recoveryIntervalMs: 0 } } });
      users = twoShards(kit);
      await kit.forShard(kit.config.migrations.controlShard).schema.dropTableIfExists(DECISIONS_TABLE);
    });

    afterEach(async () => {
      await kit.close();
    });

    it('commits statements on two shards with two-phase commit, and leaves nothing prepared or logged', async () => {
      const steps: TwoPhaseEvent[] = [];
      kit.on('twoPhase', (event) => steps.push(event));
      const [left, right] = users;
      const result = await kit.transaction({ atomic: true }, async (trx) => {
        await trx.table('orders').insert({ user_id: left, id: 1, amount_cents: 100 });
        await trx.table('orders').insert({ user_id: right, id: 1, amount_cents: 200 });
        return trx.table('orders').whereIn('user_id', [left, right]).update({ amount_cents: 300 });
      });
      expect(result).to.equal(2);
      expect(await holders(kit, users, 1)).to.equal(2);
      expect(steps.map((event) => event.step)).to.deep.equal(['preparing', 'prepared', 'prepared', 'decided', 'committed', 'committed', 'finished']);
      const report = await kit.recoverTransactions({ dryRun: true });
      expect([report.waiting, report.committed, report.rolledBack]).to.deep.equal([[], [], []]);
      expect(await kit.forShard(kit.config.migrations.controlShard)(DECISIONS_TABLE).select()).to.deep.equal([]);
    });

    it('commits a participant that only read together with one that wrote', async () => {
      const [left, right] = users;
      await kit.table('orders').insert({ user_id: right, id: 6, amount_cents: 600 });
      const steps: string[] = [];
      kit.on('twoPhase', (event) => steps.push(event.step));
      await kit.transaction({ atomic: true }, async (trx) => {
        const [source] = await trx.table('orders').where({ user_id: right, id: 6 }).select('amount_cents');
        await trx.table('orders').insert({ user_id: left, id: 6, amount_cents: source.amount_cents });
      });
      expect(steps.filter((step) => step === 'committed')).to.have.length(2);
      expect(await holders(kit, users, 6)).to.equal(2);
      expect((await kit.recoverTransactions({ dryRun: true })).waiting).to.deep.equal([]);
    });

    it('commits one shard in one phase', async () => {
      const steps: string[] = [];
      kit.on('twoPhase', (event) => steps.push(event.step));
      await kit.transaction({ atomic: true }, async (trx) => {
        await trx.table('orders').insert({ user_id: users[0], id: 2, amount_cents: 1 });
        await trx.table('users').insert({ id: users[0], name: 'One', email: 'one@example.com' });
      });
      expect(steps).to.deep.equal(['finished']);
      expect(await holders(kit, [users[0]], 2)).to.equal(1);
    });

    it('rolls back every shard when the function throws or a statement fails on the second shard', async () => {
      const [left, right] = users;
      const thrown = await kit
        .transaction({ atomic: true }, async (trx) => {
          await trx.table('orders').insert({ user_id: left, id: 3, amount_cents: 1 });
          await trx.table('orders').insert({ user_id: right, id: 3, amount_cents: 1 });
          throw new Error('changed my mind');
        })
        .catch((error: unknown) => error);
      expect((thrown as Error).message).to.equal('changed my mind');
      expect(await holders(kit, users, 3)).to.equal(0);
      await kit.table('orders').insert({ user_id: right, id: 4, amount_cents: 1 });
      const duplicate = await kit
        .transaction({ atomic: true }, async (trx) => {
          await trx.table('orders').insert({ user_id: left, id: 4, amount_cents: 1 });
          await trx.table('orders').insert({ user_id: right, id: 4, amount_cents: 1 });
        })
        .catch((error: unknown) => error);
      expect(duplicate).to.have.property('code', 'QUERY_FAILED');
      expect(await holders(kit, [left], 4)).to.equal(0);
      expect((await kit.recoverTransactions({ dryRun: true })).waiting).to.deep.equal([]);
    });

    it('decides nothing past its deadline, and refuses reads that merge shards', async () => {
      const [left, right] = users;
      const late = await kit
        .transaction(
          { atomic: true },
          async (trx) => {
            await trx.table('orders').insert({ user_id: left, id: 5, amount_cents: 1 });
            await trx.table('orders').insert({ user_id: right, id: 5, amount_cents: 1 });
            await sleep(400);
          },
          { timeoutMs: 300 },
        )
        .catch((error: unknown) => error);
      expect(late).to.be.instanceOf(TransactionAbortedError);
      expect(await holders(kit, users, 5)).to.equal(0);
      const merged = await kit
        .transaction({ atomic: true }, (trx) => trx.table('orders').orderBy('id').limit(1).then((rows) => rows))
        .catch((error: unknown) => error);
      expect(merged).to.be.instanceOf(UnsupportedQueryError);
    });

    it('reports prepared transactions it does not own, and leaves them alone', async () => {
      const shard = kit.shardNames[0]!;
      const held = await holdConnection(kit.forShard(shard));
      const family = kit.config.family;
      try {
        // A branch that writes: one that only reads may be settled at prepare.
        if (family === 'postgres') {
          await held.raw('begin', []);
          await held.raw('insert into orders (user_id, id, amount_cents) values (999999, 1, 1)', []);
          await held.raw("prepare transaction 'someone-else'", []);
        } else {
          await held.raw("xa start 'someone-else'", []);
          await held.raw('insert into orders (user_id, id, amount_cents) values (999999, 1, 1)', []);
          await held.raw("xa end 'someone-else'", []);
          await held.raw("xa prepare 'someone-else'", []);
        }
      } finally {
        // Closed, not pooled: a MariaDB session stays attached to the XA branch it prepared.
        await held.discard();
      }
      try {
        const report = await kit.recoverTransactions({ graceMs: 0 });
        expect(report.foreign.map((entry) => entry.gid)).to.include('someone-else');
        expect((await kit.recoverTransactions({ dryRun: true })).foreign.map((entry) => entry.gid)).to.include('someone-else');
      } finally {
        await kit.forShard(shard).raw(family === 'postgres' ? "rollback prepared 'someone-else'" : "xa rollback 'someone-else'");
      }
      expect(await kit.forShard(shard)('orders').where('user_id', 999999)).to.deep.equal([]);
    });

    it('shardkit tx status lists a transaction its dead coordinator left prepared, and tx recover rolls it back', async () => {
      const config = CONFIGS[target.name]!;
      const { gtrid } = await killAt(config, 50, 1, 'prepared');
      const status = await shardkit(config, 'tx', 'status');
      expect(status.stdout).to.include(gtrid);
      await sleep(Math.max(0, deadlineOf(gtrid)! - Date.now() + 50));
      const overdue = await shardkit(config, 'tx', 'status', '--json');
      expect(JSON.parse(overdue.stdout).waiting.map((entry: { gtrid: string }) => entry.gtrid)).to.include(gtrid);
      expect(overdue.code, 'within its grace it is still left to its coordinator').to.equal(0);
      const recovered = await shardkit(config, 'tx', 'recover', '--grace-ms', '0');
      expect(recovered.code, recovered.stderr).to.equal(0);
      expect(recovered.stdout).to.match(/rolled back/);
      expect(await holders(kit, users, 50)).to.equal(0);
      const after = await shardkit(config, 'tx', 'status');
      expect([after.code, after.stdout.trim()]).to.deep.equal([0, 'no prepared transactions']);
    });

    it('after a coordinator is killed at every step, recovery leaves each transaction committed on all its shards or on none', async () => {
      const steps = ['preparing', 'prepared', 'decided', 'committed'] as const;
      const counts = { killed: 0, committed: 0, rolledBack: 0, partial: 0, inDoubtLeft: 0, before: 0 };
      let next = 100;
      for (let round = 0; round < 3; round++) {
        for (const step of steps) {
          const first = next;
          next += 3;
          const { gtrid, done } = await killAt(CONFIGS[target.name]!, first, 2, step);
          counts.killed++;
          counts.before += done;
          const killedId = first + 1;
          // A cached read of the killed transaction's rows while it is in doubt: recovery's commit must end it.
          const cachedRows = () => kit.table('orders', { cache: { ttlMs: 600_000 } }).whereIn('user_id', users).where('id', killedId).orderBy('user_id');
          const whileInDoubt = (await cachedRows()).length;
          // Undecided participants are left to their coordinator until its deadline has passed.
          await sleep(Math.max(0, deadlineOf(gtrid)! - Date.now() + 50));
          await kit.recoverTransactions({ graceMs: 0 });
          const found = await holders(kit, users, killedId);
          expect((await cachedRows()).length, `the cached read after recovery, killed at ${step} (${whileInDoubt} rows while in doubt)`).to.equal(found);
          if (found === 2) counts.committed++;
          else if (found === 0) counts.rolledBack++;
          else counts.partial++;
          const decided = step === 'decided' || step === 'committed';
          expect(found, `killed at ${step}`).to.equal(decided ? 2 : 0);
          expect(await holders(kit, users, first), 'the transaction before it').to.equal(2);
          counts.inDoubtLeft += (await kit.recoverTransactions({ dryRun: true })).waiting.length;
        }
      }
      console.log(`      ${counts.killed} coordinators killed (${counts.before} transactions committed before them): ${counts.committed} committed on every shard, ${counts.rolledBack} on none, ${counts.partial} partial, ${counts.inDoubtLeft} left in doubt`);
      expect(counts.partial + counts.inDoubtLeft).to.equal(0);
    });
  });
}

describe('atomic transactions on pglite', () => {
  it('refuses to span shards without prepared transactions, with a typed error', async () => {
    const target = TARGETS.find((candidate) => candidate.name === 'pglite')!;
    const kit = await openFreshKit(target);
    try {
      const error = await kit
        .transaction({ atomic: true }, async (trx) => {
          await trx.table('orders').insert({ user_id: 1, id: 1, amount_cents: 1 });
        })
        .catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(TwoPhaseUnavailableError);
      expect(await kit.table('orders').where('user_id', 1)).to.deep.equal([]);
    } finally {
      await kit.close();
    }
  });
});
