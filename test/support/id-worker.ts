/**
 * A process making global IDs against the control database of a config, with an injected clock:
 * `npx tsx test/support/id-worker.ts <config> <count> <skewMs> <jumpBackMs> <leaseMs> [stall]`.
 * The clock runs `skewMs` off the real one and jumps back by `jumpBackMs` half-way; ids are made
 * as fast as the generator allows (waiting out its retryable refusals). Prints one JSON line
 * `{ worker, ids }`, or with `stall`, prints it and then hangs until killed.
 */
import { createShardKit } from '../../lib/index.js';
import type { IdGenerator } from '../../lib/ids/id-generator.js';
import { GlobalIds } from '../../lib/kit/global-ids.js';
import { loadConfig } from '../../lib/config/load-config.js';

const [configPath, count, skew, jumpBack, lease, stall] = process.argv.slice(2);
const total = Number(count);
let offset = Number(skew);
const clock = () => Date.now() + offset;
const kit = await createShardKit(await loadConfig(configPath));
const ids = new GlobalIds(kit.forShard(kit.config.migrations.controlShard), { clock, leaseMs: Number(lease), maxAheadMs: 200 });
const generator: IdGenerator = await ids.generator('number');
const made: number[] = [];
let refusals = 0;
let jumped = false;
while (made.length < total) {
  if (!jumped && made.length === Math.floor(total / 2)) {
    offset -= Number(jumpBack);
    jumped = true;
  }
  try {
    made.push(generator.next() as number);
  } catch (error) {
    refusals++;
    await new Promise((resolve) => setTimeout(resolve, Math.min(50, (error as { retryAfterMs?: number }).retryAfterMs ?? 10)));
  }
}
const worker = (await import('../../lib/ids/id-layout.js')).decomposeId(generator.layout, made[0]!).worker;
process.stdout.write(`${JSON.stringify({ worker, refusals, ids: made })}\n`);
if (stall === 'stall') setInterval(() => undefined, 1000);
else {
  await ids.close();
  await kit.close();
}
