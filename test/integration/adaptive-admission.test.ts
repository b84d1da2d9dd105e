import { expect } from 'chai';
import type { QueryPriority, ShardKit } from '../../lib/index.js';
import { openFreshKit, TARGETS } from '../support/targets.js';

const target = TARGETS.find((candidate) => candidate.name === 'postgres cluster')!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Latencies (ms) of the successful calls and the error codes of the others. */
interface Tally {
  ok: number[];
  errors: Map<string, number>;
}

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? Number.NaN;
}

describe('adaptive admission on the postgres cluster (a node saturated by slow statements)', function () {
  this.timeout(120_000);
  let kit: ShardKit;

  before(async () => {
    kit = await openFreshKit({ ...target, config: { ...target.config, loadShedding: { maxInFlight: 10, maxQueued: 40, adaptive: { windowMs: 200, tolerance: 2 } } } });
  });

  after(async () => {
    await kit?.close();
  });

  it('shrinks the limit under slow statements, sheds background first and never critical, and grows back after', async () => {
    const shard = kit.shardNames[0]!;
    const primary = kit.topology.shard(shard).primary;
    const key = Array.from({ length: 100 }, (_, index) => index + 1).find((id) => kit.shardFor(id) === shard)!;
    await kit.table('users').insert({ id: key, name: 'busy', email: `busy${key}@example.com` }).onConflict('id').merge();
    const limitNow = async () => (await kit.status()).nodes.find((node) => node.node === primary.config.name)!.limit;
    const tallies: Record<QueryPriority, Tally> = {
      critical: { ok: [], errors: new Map() },
      normal: { ok: [], errors: new Map() },
      background: { ok: [], errors: new Map() },
    };
    const call = async (priority: QueryPriority, slowMs: number) => {
      const started = performance.now();
      const query = kit.table('users', { priority, read: 'primary', timeoutMs: 3000 }).where('id', key);
      try {
        await (slowMs > 0 ? query.select(kit.forShard(shard).raw(`pg_sleep(${slowMs / 1000})`)) : query.first('name'));
        tallies[priority].ok.push(performance.now() - started);
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'unknown';
        tallies[priority].errors.set(code, (tallies[priority].errors.get(code) ?? 0) + 1);
        // A shed caller comes back after the wait it was told, as a well-behaved client does.
        await sleep((error as { retryAfterMs?: number }).retryAfterMs ?? 50);
      }
    };
    const loop = (until: () => boolean, priority: QueryPriority, slowMs: number, pauseMs: number) =>
      (async () => {
        while (until()) {
          await call(priority, slowMs);
          await sleep(pauseMs);
        }
      })();

    const before = await limitNow();
    // Normal traffic throughout; for 3 s, 30 background callers of 200 ms statements and a critical caller.
    let loaded = true;
    let running = true;
    const normal = Array.from({ length: 4 }, () => loop(() => running, 'normal', 0, 5));
    await sleep(500);
    const load = [...Array.from({ length: 30 }, () => loop(() => loaded, 'background', 200, 0)), loop(() => loaded, 'critical', 0, 20)];
    let lowest = before;
    const watch = (async () => {
      while (running) {
        lowest = Math.min(lowest, await limitNow());
        await sleep(50);
      }
    })();
    await sleep(3000);
    const normalUnderLoad = [...tallies.normal.ok];
    loaded = false;
    await Promise.all(load);
    const lowestUnderLoad = lowest;
    // The load is gone: normal traffic alone for 3 s.
    await sleep(3000);
    const after = await limitNow();
    running = false;
    await Promise.all([...normal, watch]);

    const shed = (priority: QueryPriority) => tallies[priority].errors.get('SHARD_OVERLOADED') ?? 0;
    const p99 = percentile(normalUnderLoad, 0.99);
    console.log(
      `      limit ${before} -> lowest ${lowestUnderLoad} under load -> ${after} after; shed: background ${shed('background')}, normal ${shed('normal')}, critical ${shed('critical')}; ` +
        `normal p99 under load ${Math.round(p99)} ms (${normalUnderLoad.length} calls); background served ${tallies.background.ok.length}`,
    );
    expect(before).to.equal(10);
    expect(lowestUnderLoad).to.be.below(before);
    expect(after).to.be.at.least(8);
    expect(shed('critical')).to.equal(0);
    expect(tallies.critical.ok.length).to.be.greaterThan(0);
    expect(shed('background')).to.be.greaterThan(shed('normal'));
    expect(normalUnderLoad.length).to.be.greaterThan(20);
    // Normal work waits for at most about one slow statement ahead of it, never behind the background queue.
    expect(p99).to.be.below(1000);
  });
});
