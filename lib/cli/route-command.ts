/** shardkit route KEY...: the slot and shard of each key (integers given as digits route as integers do). */
import { type CliIo, EXIT, UsageError, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export async function routeCommand(keys: readonly string[], config: string | undefined, io: CliIo): Promise<number> {
  if (keys.length === 0) throw new UsageError('route needs at least one KEY');
  return withKit(config, async (kit) => {
    io.out(renderTable(['key', 'slot', 'shard'], keys.map((key) => [key, kit.topology.ring.slotOf(key), kit.shardFor(key)])));
    return EXIT.ok;
  });
}
