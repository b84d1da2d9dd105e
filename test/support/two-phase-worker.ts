/**
 * A coordinator of atomic transactions that stops dead at a chosen step, for the crash tests:
 * `npx tsx test/support/two-phase-worker.ts <config> <first id> <count> <step>`.
 * Runs `count` atomic transactions, each inserting order `id` for two users on different shards
 * (ids from `first id` up); the last one, at its first `step` event (preparing, prepared,
 * decided, committed), prints `AT <step> <gtrid>` and blocks its thread until it is killed.
 * The earlier ones print `DONE <id>`.
 */
import { createShardKit } from '../../lib/index.js';
import { loadConfig } from '../../lib/config/load-config.js';

const [configPath, first, count, step] = process.argv.slice(2);
const kit = await createShardKit({ ...(await loadConfig(configPath)), transactions: { recoveryIntervalMs: 0 } });
const [left, right] = twoUsersOnTwoShards();
const last = Number(first) + Number(count) - 1;
let current = 0;
kit.on('twoPhase', (event) => {
  if (current !== last || event.step !== step) return;
  process.stdout.write(`AT ${event.step} ${event.gtrid}\n`);
  // Blocks the event loop: nothing more of this transaction reaches any database.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
for (current = Number(first); current <= last; current++) {
  const id = current;
  await kit.transaction({ atomic: true }, async (trx) => {
    await trx.table('orders').insert({ user_id: left, id, amount_cents: id });
    await trx.table('orders').insert({ user_id: right, id, amount_cents: id });
  }, { timeoutMs: 2000 });
  process.stdout.write(`DONE ${id}\n`);
}
await kit.close();

function twoUsersOnTwoShards(): [number, number] {
  const owner = (id: number) => kit.topology.ownerOf(id).name;
  const other = [...Array(100).keys()].map((n) => n + 2).find((id) => owner(id) !== owner(1))!;
  return [1, other];
}
