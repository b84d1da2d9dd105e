import { execFile } from 'node:child_process';
import { expect } from 'chai';
import {
  createShardKit,
  QueryTimeoutError,
  ScatterError,
  type ShardKit,
  type ShardKitConfig,
  ShardUnavailableError,
} from '../../lib/index.js';
import { eventually, ServerControl } from '../../scripts/local-cluster.js';
import { BlackHole } from '../support/black-hole.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

/** How late a call may settle after its deadline on these shared 2-core machines. */
const SLACK_MS = 400;

async function timed<T>(work: () => Promise<T>): Promise<{ outcome: T | unknown; ms: number }> {
  const started = performance.now();
  const outcome = await work().catch((error: unknown) => error);
  return { outcome, ms: performance.now() - started };
}

describe('deadlines: a host that accepts connections and never answers', function () {
  this.timeout(60_000);
  let hole: BlackHole;
  let kit: ShardKit;

  const config = (port: number): ShardKitConfig => ({
    shards: [{ name: 'hole', primary: { dialect: 'postgres', connection: { host: '127.0.0.1', port, user: 'app', password: 'never-shown-1', database: 'x' } } }],
    // Declared, so that every read goes to the node itself rather than waiting on one shared catalog lookup.
    tables: { users: { shardKey: 'id', keyType: 'integer' } },
    timeouts: { queryMs: 800, connectMs: 600, closeMs: 500 },
    // More failures than the kit's start-up makes (it reads the topology record), fewer than 30 timeouts.
    breaker: { volumeThreshold: 15, errorThresholdPercentage: 50, resetTimeoutMs: 60_000 },
  });

  before(async () => {
    hole = await BlackHole.open();
    kit = await createShardKit(config(hole.port));
  });

  after(async () => {
    await kit?.close();
    await hole?.close();
  });

  it('fails a query with a typed, retryable timeout within its deadline, naming the node', async () => {
    const { outcome, ms } = await timed(() => kit.table('users', { timeoutMs: 500 }).where('id', 1).first());
    console.log(`      black hole: failed after ${ms.toFixed(0)} ms (deadline 500 ms)`);
    expect(outcome).to.be.instanceOf(QueryTimeoutError);
    const error = outcome as QueryTimeoutError;
    expect(error.retryable).to.equal(true);
    expect(error.node).to.equal('hole-primary');
    expect(error.message).to.not.include('never-shown-1');
    expect(ms).to.be.below(500 + SLACK_MS);
  });

  it('settles 30 concurrent reads within the deadline, then the breaker opens and calls fail fast', async () => {
    const { outcome, ms } = await timed(() =>
      Promise.all(Array.from({ length: 30 }, (_, index) => kit.table('users', { timeoutMs: 600 }).where('id', index + 1).first().catch((error: unknown) => error))),
    );
    const errors = outcome as unknown[];
    const byCode = errors.reduce<Record<string, number>>((counts, error) => {
      const code = String((error as { code?: string }).code);
      counts[code] = (counts[code] ?? 0) + 1;
      return counts;
    }, {});
    console.log(`      black hole: 30 concurrent reads settled after ${ms.toFixed(0)} ms (deadline 600 ms): ${JSON.stringify(byCode)}`);
    expect(ms).to.be.below(600 + SLACK_MS);
    const codes = new Set(errors.map((error) => (error as { code?: string }).code));
    expect([...codes].every((code) => ['QUERY_TIMEOUT', 'SHARD_UNAVAILABLE', 'CONNECTION_FAILED'].includes(String(code))), [...codes].join()).to.equal(true);
    expect((await kit.status()).nodes[0]!.breaker).to.equal('open');
    const fast = await timed(() => kit.table('users').where('id', 1).first());
    expect(fast.outcome).to.be.instanceOf(ShardUnavailableError);
    expect(fast.ms).to.be.below(20);
    // A slot granted to a waiter as the others left is given back as its wait ends.
    expect(await eventually(async () => (await kit.status()).nodes[0]!.inFlight === 0, 2000)).to.equal(true);
  });

  it('closes within its bound, and a process that did all this exits by itself', async () => {
    const child = await new Promise<{ stdout: string; ms: number; code: number | null }>((resolve) => {
      const started = performance.now();
      execFile(process.execPath, ['--import', 'tsx', 'test/support/close-and-exit.ts', String(hole.port)], { timeout: 20_000 }, (error, stdout) => {
        resolve({ stdout, ms: performance.now() - started, code: error ? ((error as { code?: number }).code ?? 1) : 0 });
      });
    });
    const report = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { code: string; failedAfterMs: number; closeMs: number };
    console.log(`      child: query failed after ${report.failedAfterMs} ms (deadline 300), close took ${report.closeMs} ms (bound 500), process ran ${child.ms.toFixed(0)} ms`);
    expect(child.code).to.equal(0);
    expect(report.code).to.equal('QUERY_TIMEOUT');
    expect(report.failedAfterMs).to.be.below(300 + SLACK_MS);
    expect(report.closeMs).to.be.below(500 + SLACK_MS);
    // Node and tsx start-up take a second or two here; a hung socket would keep it until the 20 s kill.
    expect(child.ms).to.be.below(8000);
  });

  it('shardkit status against it prints the node as stalled and exits 5, within seconds', async () => {
    const started = performance.now();
    const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        ['bin/shardkit.js', 'status', '--config', 'test/support/black-hole.config.ts'],
        { env: { ...process.env, BLACK_HOLE_PORT: String(hole.port) }, timeout: 30_000 },
        (error, stdout) => resolve({ code: error ? Number((error as { code?: number }).code) : 0, stdout }),
      );
    });
    const ms = performance.now() - started;
    console.log(`      shardkit status exited ${result.code} after ${ms.toFixed(0)} ms`);
    expect(result.code).to.equal(5);
    expect(result.stdout).to.match(/hole-primary\s+primary\s+stalled/);
    expect(ms).to.be.below(15_000);
  });

  it('marks the node stalled in a probing status', async () => {
    const fresh = await createShardKit(config(hole.port));
    try {
      const status = await fresh.status({ probe: true, probeTimeoutMs: 400 });
      expect(status.nodes[0]!.health).to.equal('stalled');
    } finally {
      await fresh.close();
    }
  });
});

for (const target of TARGETS.filter((candidate) => candidate.name !== 'pglite')) {
  describe(`deadlines: a SIGSTOPped primary on the ${target.name}`, function () {
    this.timeout(120_000);
    let kit: ShardKit;
    let stopped: ServerControl;
    let stoppedShard: string;
    let healthyShard: string;
    const ROWS = 3000;
    const keyOn = (shard: string) => Array.from({ length: ROWS }, (_, index) => index + 1).find((id) => kit.shardFor(id) === shard)!;
    // 5 kB a row: more than the sockets buffer, so that the server is still sending when it stops.
    const pad = () => kit.forShard(healthyShard).raw("rpad(email, 5000, 'x') as pad");

    before(async () => {
      kit = await openFreshKit({
        ...target,
        config: {
          ...target.config,
          // A short window, so that the successes of the previous case do not outweigh this one's timeouts.
          breaker: { volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 1000, rollingWindowMs: 1500 },
          timeouts: { queryMs: 5000, closeMs: 1000 },
        },
      });
      [healthyShard, stoppedShard] = kit.shardNames as [string, string];
      stopped = new ServerControl(kit.topology.shard(stoppedShard).primary);
      const rows = Array.from({ length: ROWS }, (_, index) => ({ id: index + 1, name: `user ${index + 1}`, email: `u${index + 1}@example.com` }));
      for (let start = 0; start < rows.length; start += 500) await kit.table('users').insert(rows.slice(start, start + 500));
    });

    afterEach(async () => {
      await stopped.resume();
      // Back to normal before the next case: the breaker closes after its reset.
      await eventually(async () => (await kit.table('users').where('id', keyOn(stoppedShard)).first()) !== undefined, 15_000);
    });

    after(async () => {
      await stopped?.resume();
      await kit?.close();
    });

    it('fails a read and a write within their deadlines, and a scatter names the stopped shard', async () => {
      await stopped.pause();
      const read = await timed(() => kit.table('users', { timeoutMs: 1000 }).where('id', keyOn(stoppedShard)).first());
      const write = await timed(() => kit.table('users', { timeoutMs: 1000 }).where('id', keyOn(stoppedShard)).update({ name: 'x' }));
      const scatter = await timed(() => kit.table('users', { timeoutMs: 1000 }).select('id').orderBy('id'));
      const gathered = await timed(() => kit.gather(kit.table('users', { timeoutMs: 1000 }).select('id')));
      console.log(`      read ${read.ms.toFixed(0)} ms, write ${write.ms.toFixed(0)} ms, scatter ${scatter.ms.toFixed(0)} ms, gather ${gathered.ms.toFixed(0)} ms (deadline 1000 ms)`);
      for (const [operation, { outcome, ms }] of [['read', read], ['write', write]] as const) {
        expect(outcome, `${operation}: ${outcome instanceof Error ? String(outcome) : JSON.stringify(outcome)}`).to.satisfy((error: unknown) => error instanceof QueryTimeoutError || error instanceof ShardUnavailableError);
        expect(ms).to.be.below(1000 + SLACK_MS);
      }
      expect(scatter.outcome).to.be.instanceOf(ScatterError);
      expect((scatter.outcome as ScatterError).failures.map((failure) => failure.shard)).to.deep.equal([stoppedShard]);
      expect(scatter.ms).to.be.below(1000 + SLACK_MS);
      const partial = gathered.outcome as Awaited<ReturnType<typeof kit.gather>>;
      expect(partial.missingShards.map((missing) => missing.shard)).to.deep.equal([stoppedShard]);
      expect((partial.rows as unknown[]).length).to.be.greaterThan(0);
      expect(gathered.ms).to.be.below(1000 + SLACK_MS);
      // The healthy shard does not notice.
      expect(Number((await kit.table('users').where('id', keyOn(healthyShard)).first()).id)).to.equal(keyOn(healthyShard));
    });

    it('settles 30 concurrent reads by their deadline, opens the breaker, then recovers after SIGCONT', async () => {
      await stopped.pause();
      const { outcome, ms } = await timed(() =>
        Promise.all(Array.from({ length: 30 }, () => kit.table('users', { timeoutMs: 1000 }).where('id', keyOn(stoppedShard)).first().catch((error: unknown) => error))),
      );
      console.log(`      30 concurrent reads settled after ${ms.toFixed(0)} ms (deadline 1000 ms)`);
      expect(ms).to.be.below(1000 + SLACK_MS);
      expect((outcome as unknown[]).every((error) => error instanceof QueryTimeoutError || error instanceof ShardUnavailableError)).to.equal(true);
      const node = (await kit.status()).nodes.find((candidate) => candidate.node === kit.topology.shard(stoppedShard).primary.config.name)!;
      expect(node.breaker).to.equal('open');
      expect(await eventually(async () => (await kit.status()).nodes.every((candidate) => candidate.inFlight === 0), 2000)).to.equal(true);
      await stopped.resume();
      expect(await eventually(async () => (await kit.table('users').where('id', keyOn(stoppedShard)).first()) !== undefined, 15_000)).to.equal(true);
    });

    it('fails a scatter within moments when a shard primary is killed while it runs, naming that shard', async () => {
      const keys = [keyOn(healthyShard), keyOn(stoppedShard)];
      const sleep = kit.forShard(healthyShard).raw(target.name === 'mariadb cluster' ? 'sleep(1) as slept' : 'pg_sleep(1) as slept');
      const running = timed(() => kit.table('users', { timeoutMs: 5000 }).select('id', sleep).whereIn('id', keys));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const killedAt = performance.now();
      await stopped.kill();
      const { outcome } = await running;
      const after = performance.now() - killedAt;
      await stopped.start();
      console.log(`      scatter failed ${after.toFixed(0)} ms after the kill (deadline 5000 ms)`);
      expect(outcome).to.be.instanceOf(ScatterError);
      expect((outcome as ScatterError).failures.map((failure) => failure.shard)).to.deep.equal([stoppedShard]);
      expect(after).to.be.below(3000);
    });

    it('ends a stream with a typed timeout when its server stops mid-stream, and releases the connection', async () => {
      const stream = kit.table('users', { timeoutMs: 1000 }).select('id', pad()).where('id', '<=', ROWS).orderBy('id').stream() as AsyncIterable<{ id: unknown }>;
      let rows = 0;
      const started = { at: 0 };
      const outcome = await (async () => {
        try {
          for await (const _row of stream) {
            rows++;
            if (rows === 50) {
              await stopped.pause();
              started.at = performance.now();
            }
          }
          return undefined;
        } catch (error) {
          return error;
        }
      })();
      const waited = performance.now() - started.at;
      console.log(`      stream: ${rows} rows, then failed ${waited.toFixed(0)} ms after the stop (idle bound 1000 ms)`);
      expect(outcome, `stream ended after ${rows} rows without an error`).to.be.instanceOf(QueryTimeoutError);
      expect((outcome as QueryTimeoutError).shard).to.equal(stoppedShard);
      expect(rows).to.be.below(ROWS);
      expect(waited).to.be.below(1000 + SLACK_MS + 500);
      const released = await eventually(async () => (await kit.status()).nodes.every((node) => node.inFlight === 0), 2000);
      expect(released, 'every connection of the stream is released').to.equal(true);
    });

    it('ends a single-shard stream with an error soon after its server is killed', async () => {
      const ids = Array.from({ length: ROWS }, (_, index) => index + 1).filter((id) => kit.shardFor(id) === stoppedShard);
      const stream = kit.table('users', { timeoutMs: 3000 }).select('id', pad()).whereIn('id', ids).stream() as AsyncIterable<unknown>;
      let rows = 0;
      let killedAt = 0;
      const outcome = await (async () => {
        try {
          for await (const _row of stream) {
            rows++;
            if (rows === 20) {
              await stopped.kill();
              killedAt = performance.now();
            }
          }
          return undefined;
        } catch (error) {
          return error;
        }
      })();
      const waited = performance.now() - killedAt;
      console.log(`      single-shard stream: ${rows} of ${ids.length} rows, failed ${waited.toFixed(0)} ms after the kill`);
      await stopped.start();
      expect(outcome, `stream ended after ${rows} rows without an error`).to.have.property('code').that.is.a('string');
      expect(rows).to.be.below(ids.length);
      expect(waited).to.be.below(3000 + SLACK_MS);
    });

    it('fails a transaction within its deadline when its server stops mid-transaction, committing nothing', async () => {
      const key = keyOn(stoppedShard);
      const { outcome, ms } = await timed(() =>
        kit.forKey(key).transaction(async (trx) => {
          await trx('users').where('id', key).update({ name: 'in transaction' });
          await stopped.pause();
          await trx('users').where('id', key).update({ name: 'in transaction, second' });
        }),
      );
      console.log(`      transaction failed ${ms.toFixed(0)} ms after it began (statement bound 5000 ms)`);
      expect(outcome).to.be.instanceOf(QueryTimeoutError);
      expect(ms).to.be.below(5000 + SLACK_MS + 1000);
      await stopped.resume();
      await eventually(async () => (await kit.table('users').where('id', key).first()) !== undefined, 15_000);
      // Neither statement of the transaction committed. (An earlier test's timed-out autocommit
      // update may have run when the server resumed: a write outside a transaction may commit.)
      expect((await kit.table('users').where('id', key).first()).name).to.not.match(/in transaction/);
    });

    it('closes within its bound while statements hang on the stopped server', async () => {
      const closing = await createShardKit({ ...target.config, timeouts: { queryMs: 30_000, closeMs: 500 } });
      await stopped.pause();
      const hanging = closing.table('users').where('id', keyOn(stoppedShard)).first().catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const { ms } = await timed(() => closing.close());
      console.log(`      close took ${ms.toFixed(0)} ms with a statement hanging (bound 500 ms)`);
      expect(ms).to.be.below(500 + SLACK_MS);
      expect(await hanging).to.have.property('code');
    });
  });
}
