/**
 * Transactions on the local PostgreSQL cluster, against plain knex on the same primary in the
 * same run (interleaved rounds):
 *
 *   routed      kit.transaction(key, ...) with 3 statements (insert, update, select) through
 *               trx.table(): planned, checked and guarded
 *   guarded     kit.forKey(key).transaction(): the same statements through the guarded seam only
 *               (breaker, admission, deadlines, events), not planned: splits the overhead
 *   baseline    knex.transaction() with the same 3 statements on a plain knex of that primary
 *   2PC         kit.transaction({ atomic: true }) writing one order and updating one user on each
 *               of two shards (prepare, decision log, commit prepared), against the same
 *               statements as two routed transactions one after the other
 *   ids         kit.ids() per second in one process, the default (53-bit) and the 64-bit layout
 *
 * Last line: {"bench":"transactions","p50RatioVsKnexTransaction":..,"twoPhaseP50Ratio":..,"idsPerSec":..}
 */
import knexModule from 'knex';
import { renderTable } from '../../lib/cli/render-table.js';
import { createShardKit, SchemaMigrator } from '../../lib/index.js';
import clusterConfig from '../../shards.cluster.config.js';
import type { Benchmark } from '../bench.js';
import { withLocalCluster } from '../local-cluster.js';
import { percentile, sampleInterleaved } from './latency.js';

const ROUNDS = 400;
const KEY = 4242;
const TWO_PHASE_ROUNDS = 200;

function idsPerSecond(next: () => unknown): number {
  const rates: number[] = [];
  for (let run = 0; run < 5; run++) {
    let made = 0;
    const started = performance.now();
    while (performance.now() - started < 500) {
      for (let index = 0; index < 1000; index++) {
        try {
          next();
          made++;
        } catch {
          // The layout's per-millisecond capacity is spent: the generator refuses until the next one.
        }
      }
    }
    rates.push(made / ((performance.now() - started) / 1000));
  }
  return percentile(rates, 0.5);
}

/** A key whose owner is another shard than `key`'s. */
function otherShardKey(kit: { topology: { ownerOf(key: unknown): { name: string } } }, key: number): number {
  const owner = kit.topology.ownerOf(key).name;
  let candidate = key + 1;
  while (kit.topology.ownerOf(candidate).name === owner) candidate++;
  return candidate;
}

export const transactionsBenchmark: Benchmark = {
  name: 'transactions',
  description: 'routed single-shard transactions vs plain knex transactions on the same primary, and global ids per second',
  run: () =>
    withLocalCluster(async () => {
      const kit = await createShardKit(clusterConfig);
      await new SchemaMigrator(kit).latest();
      const shard = kit.topology.ownerOf(KEY);
      const primary = clusterConfig.shards.find((candidate) => candidate.name === shard.name)!.primary;
      const plain = knexModule.knex({ client: 'pg', connection: primary.connection as never, pool: { min: 1, max: 4 } });
      try {
        await kit.table('orders').where('user_id', KEY).delete();
        await kit.table('users').where('id', KEY).delete();
        await kit.table('users').insert({ id: KEY, name: 'bench', email: 'bench@example.com' });
        let nextId = 1;
        const samples = await sampleInterleaved(
          {
            routed: () =>
              kit.transaction(KEY, async (trx) => {
                await trx.table('orders').insert({ user_id: KEY, id: nextId++, amount_cents: 1 });
                await trx.table('users').where('id', KEY).update({ name: 'routed' });
                return trx.table('orders').where('user_id', KEY).where('id', nextId - 1).first();
              }),
            guarded: () =>
              kit.forKey(KEY).transaction(async (trx) => {
                await trx('orders').insert({ user_id: KEY, id: nextId++, amount_cents: 1 });
                await trx('users').where('id', KEY).update({ name: 'guarded' });
                return trx('orders').where('user_id', KEY).where('id', nextId - 1).first();
              }),
            knex: () =>
              plain.transaction(async (trx) => {
                await trx('orders').insert({ user_id: KEY, id: nextId++, amount_cents: 1 });
                await trx('users').where('id', KEY).update({ name: 'knex' });
                return trx('orders').where('user_id', KEY).where('id', nextId - 1).first();
              }),
          },
          ROUNDS,
        );
        const other = otherShardKey(kit, KEY);
        await kit.table('orders').where('user_id', other).delete();
        await kit.table('users').where('id', other).delete();
        await kit.table('users').insert({ id: other, name: 'bench', email: 'bench@example.com' });
        const writeBoth = async (table: (name: string) => ReturnType<typeof kit.table>, user: number, id: number) => {
          await table('orders').insert({ user_id: user, id, amount_cents: 1 });
          await table('users').where('id', user).update({ name: `bench ${id}` });
        };
        const twoPhase = await sampleInterleaved(
          {
            atomic: () => {
              const id = nextId++;
              return kit.transaction({ atomic: true }, async (trx) => {
                await writeBoth((name) => trx.table(name), KEY, id);
                await writeBoth((name) => trx.table(name), other, id);
              });
            },
            independent: async () => {
              const id = nextId++;
              await kit.transaction(KEY, (trx) => writeBoth((name) => trx.table(name), KEY, id));
              await kit.transaction(other, (trx) => writeBoth((name) => trx.table(name), other, id));
            },
          },
          TWO_PHASE_ROUNDS,
        );
        const atomicP50 = percentile(twoPhase.atomic!, 0.5);
        const independentP50 = percentile(twoPhase.independent!, 0.5);
        const twoPhaseRatio = atomicP50 / independentP50;
        const routedP50 = percentile(samples.routed!, 0.5);
        const knexP50 = percentile(samples.knex!, 0.5);
        const numberIds = await kit.ids();
        const wideIds = await kit.ids({ format: 'bigint' });
        const idsNumber = idsPerSecond(() => numberIds.next());
        const idsWide = idsPerSecond(() => wideIds.next());
        const ratio = routedP50 / knexP50;
        console.log(
          renderTable(
            ['measure', 'value', 'baseline', 'ratio'],
            [
              ['routed transaction p50 ms (3 statements)', routedP50.toFixed(3), `${knexP50.toFixed(3)} (knex)`, ratio.toFixed(3)],
              ['guarded (forKey) transaction p50 ms', percentile(samples.guarded!, 0.5).toFixed(3), `${knexP50.toFixed(3)} (knex)`, (percentile(samples.guarded!, 0.5) / knexP50).toFixed(3)],
              ['routed transaction p99 ms', percentile(samples.routed!, 0.99).toFixed(3), percentile(samples.knex!, 0.99).toFixed(3), '-'],
              ['2PC over 2 shards p50 ms (2+2 statements)', atomicP50.toFixed(3), `${independentP50.toFixed(3)} (2 routed)`, twoPhaseRatio.toFixed(3)],
              ['2PC over 2 shards p99 ms', percentile(twoPhase.atomic!, 0.99).toFixed(3), percentile(twoPhase.independent!, 0.99).toFixed(3), '-'],
              ['ids/s, number (53-bit, 64 per ms)', Math.round(idsNumber).toLocaleString('en'), '-', '-'],
              ['ids/s, bigint (64-bit, 4,096 per ms)', Math.round(idsWide).toLocaleString('en'), '-', '-'],
            ],
            80,
          ),
        );
        console.log(`(${ROUNDS} interleaved rounds each on ${shard.name}'s primary; 2PC: ${TWO_PHASE_ROUNDS} rounds on ${shard.name} and ${kit.topology.ownerOf(other).name})`);
        await kit.table('orders').whereIn('user_id', [KEY, other]).delete();
        await kit.table('users').whereIn('id', [KEY, other]).delete();
        console.log(
          JSON.stringify({
            bench: 'transactions',
            p50RatioVsKnexTransaction: Number(ratio.toFixed(3)),
            twoPhaseP50Ratio: Number(twoPhaseRatio.toFixed(3)),
            idsPerSec: Math.round(idsWide),
            idsPerSecNumberFormat: Math.round(idsNumber),
          }),
        );
      } finally {
        await plain.destroy();
        await kit.close();
      }
    }),
};
