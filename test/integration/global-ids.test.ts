import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { createShardKit, decomposeId, layoutOf } from '../../lib/index.js';
import { TARGETS } from '../support/targets.js';

interface WorkerOutput {
  worker: number;
  refusals: number;
  ids: number[];
}

/** Runs test/support/id-worker.ts; resolves with its JSON line (the process may go on, when stalled). */
function idWorker(config: string, args: (string | number)[]): { output: Promise<WorkerOutput>; kill(): void } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/id-worker.ts', config, ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  const output = new Promise<WorkerOutput>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.indexOf('\n');
      if (line >= 0) resolve(JSON.parse(text.slice(0, line)) as WorkerOutput);
    });
    child.on('exit', (code) => (text.includes('\n') ? undefined : reject(new Error(`id worker exited ${code} without output`))));
  });
  return { output, kill: () => child.kill('SIGKILL') };
}

describe('global ids on the embedded default', () => {
  it('gives numbers below 2^53, bigints and strings, from a leased worker released on close', async () => {
    const kit = await createShardKit(TARGETS[0]!.config);
    try {
      const ids = await kit.ids();
      const made = Array.from({ length: 10_000 }, () => ids.next() as number);
      expect(made.every(Number.isSafeInteger)).to.equal(true);
      expect(new Set(made).size).to.equal(made.length);
      expect(typeof (await kit.ids({ format: 'bigint' })).next()).to.equal('bigint');
      expect(typeof (await kit.ids({ format: 'string' })).next()).to.equal('string');
      const worker = decomposeId(layoutOf('number'), made[0]!).worker;
      const leased = await kit.forShard(kit.config.migrations.controlShard)('shardkit_id_workers').where({ space: 'number', worker }).first();
      expect(leased.owner).to.be.a('string');
    } finally {
      await kit.close();
    }
  });
});

for (const [name, config] of [
  ['postgres cluster', 'shards.cluster.config.ts'],
  ['mariadb cluster', 'shards.cluster.config.ts#mariadb'],
] as const) {
  describe(`global ids across processes on the ${name}`, function () {
    this.timeout(120_000);

    it('never repeats across processes with skewed clocks, one of which goes back, nor after a killed owner is replaced', async () => {
      // Four processes at once: clocks 0, +700 ms, -900 ms, and one that jumps back 1.5 s half-way.
      const runs = [
        [0, 0],
        [700, 0],
        [-900, 0],
        [0, 1500],
      ].map(([skew, jumpBack]) => idWorker(config, [40_000, skew!, jumpBack!, 2000]));
      const outputs = await Promise.all(runs.map((run) => run.output));
      // A process that stalls forever after making its ids, killed; its worker is taken over after its lease lapses.
      const stalled = idWorker(config, [5_000, 3000, 0, 1500, 'stall']);
      const first = await stalled.output;
      stalled.kill();
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const successors = await Promise.all([0, 0, 0, 0, 0].map(() => idWorker(config, [5_000, 0, 0, 1500]).output));
      const all = [...outputs, first, ...successors].flatMap((output) => output.ids);
      const reused = successors.filter((output) => output.worker === first.worker).length;
      console.log(
        `      ${name}: ${all.length} ids from ${outputs.length + 1 + successors.length} processes (skews 0/+700/-900 ms, a 1.5 s jump back, ` +
          `a killed owner with a +3 s clock on worker ${first.worker}, taken over ${reused} time(s), successors on ${successors.map((output) => output.worker)}): ` +
          `${all.length - new Set(all).size} duplicates, ` +
          `${outputs.reduce((sum, output) => sum + output.refusals, 0)} retryable refusals`,
      );
      expect(all.length - new Set(all).size, 'duplicates').to.equal(0);
      const everyone = [...outputs, first, ...successors];
      for (const output of everyone) {
        expect(output.ids.every((id, index) => index === 0 || id > output.ids[index - 1]!), 'each process in time order').to.equal(true);
      }
      // Processes that had the same worker (one after the other) used disjoint stretches of time.
      const layout = layoutOf('number');
      const spans = everyone.map((output) => ({ worker: output.worker, from: decomposeId(layout, output.ids[0]!).timestamp, to: decomposeId(layout, output.ids.at(-1)!).timestamp }));
      for (const a of spans) {
        for (const b of spans) {
          if (a !== b && a.worker === b.worker) expect(a.to < b.from || b.to < a.from, `worker ${a.worker} used by two processes at once`).to.equal(true);
        }
      }
    });
  });
}
