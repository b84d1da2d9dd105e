/** shardkit status [--json]: every node with its role, breaker, in-flight and queued queries, and replica lag. */
import type { ShardKit } from '../shard-kit.js';
import { type CliIo, EXIT, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export async function statusCommand(options: { config?: string; json: boolean }, io: CliIo): Promise<number> {
  return withKit(options.config, async (kit) => {
    // Give the lag monitor one probe cycle, so that replica lag is measured, not unknown.
    await new Promise((resolve) => setTimeout(resolve, kit.config.lagMonitor.intervalMs + 100));
    io.out(await renderStatus(kit, options.json));
    return EXIT.ok;
  });
}

export async function renderStatus(kit: ShardKit, json: boolean): Promise<string> {
  const status = await kit.status();
  if (json) return JSON.stringify(status, null, 2);
  return renderTable(
    ['shard', 'node', 'role', 'where', 'breaker', 'in flight', 'queued', 'lag ms', 'reading age ms', 'note'],
    status.nodes.map((node) => [node.shard, node.node, node.role, node.where, node.breaker, node.inFlight, node.queued, node.lagMs, node.readingAgeMs, node.problem]),
  );
}
