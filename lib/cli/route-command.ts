/**
 * shardkit route KEY...: the slot and shard of each key under the config's ring, computed here:
 * no database is needed. After a rebalance the ring in the control table places keys instead;
 * `--live` reads it (that needs the control database).
 */
import { loadConfig } from '../config/load-config.js';
import { resolveConfig } from '../config/resolve-config.js';
import { HashRing } from '../hashing/hash-ring.js';
import { ringShardsOf } from '../topology/topology.js';
import { type CliIo, EXIT, UsageError, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export async function routeCommand(keys: readonly string[], config: string | undefined, live: boolean, io: CliIo): Promise<number> {
  if (keys.length === 0) throw new UsageError('route needs at least one KEY');
  const show = (ring: HashRing) => io.out(renderTable(['key', 'slot', 'shard'], keys.map((key) => [key, ring.slotOf(key), ring.shardFor(key)])));
  if (live) {
    return withKit(config, async (kit) => {
      show(kit.topology.ring);
      return EXIT.ok;
    });
  }
  show(await HashRing.create(ringShardsOf(resolveConfig(await loadConfig(config)))));
  return EXIT.ok;
}
