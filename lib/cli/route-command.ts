/**
 * shardkit route KEY... [--live]: the slot and shard of each key under the config's ring,
 * computed here: no database is needed. After a rebalance the ring in the control table places
 * keys instead; `--live` reads it (that needs the control database).
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/load-config.js';
import { resolveConfig } from '../config/resolve-config.js';
import { HashRing } from '../hashing/hash-ring.js';
import { ringShardsOf } from '../topology/topology.js';
import { type CliIo, EXIT, type GlobalOptions, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { renderTable } from './render-table.js';

export function registerRoute(program: Command, io: CliIo, run: Run): void {
  program
    .command('route')
    .argument('<keys...>', 'shard keys (integers given as digits route as integers do)')
    .option('--live', 'use the ring in use, read from the control database')
    .description('the slot and shard of each key')
    .action(
      run(async (keys: string[], _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { live?: boolean }>();
        const show = (ring: HashRing) => {
          const routes = keys.map((key) => ({ key, slot: ring.slotOf(key), shard: ring.shardFor(key) }));
          io.out(options.json ? JSON.stringify(routes, null, 2) : renderTable(['key', 'slot', 'shard'], routes.map((route) => [route.key, route.slot, route.shard]), io.columns));
          return EXIT.ok;
        };
        if (options.live) return withKit(options.config, async (kit) => show(kit.topology.ring));
        return show(await HashRing.create(ringShardsOf(resolveConfig(await loadConfig(options.config)))));
      }),
    );
}
