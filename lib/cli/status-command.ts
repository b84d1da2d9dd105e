/**
 * shardkit status [--json] [--watch [SECONDS]]: the shards with their share of the ring, every node
 * with its health (each is asked to answer within 2 s), role, breaker, in-flight and queued
 * queries and replica lag, and the online migrations with the phase this instance applies.
 * Exits 5 when a node is down or stalled. --watch redraws it until interrupted.
 */
import { SLOT_COUNT } from '../hashing/key-hasher.js';
import type { KitStatus } from '../shard-kit.js';
import { type CliIo, EXIT, withKit } from './cli-context.js';
import { renderTable } from './render-table.js';

export interface StatusOptions {
  config?: string;
  json: boolean;
  /** Redraw every this many seconds until SIGINT. */
  watchSeconds?: number;
}

export async function statusCommand(options: StatusOptions, io: CliIo): Promise<number> {
  return withKit(options.config, async (kit) => {
    // Give the lag monitor one probe cycle, so that replica lag is measured, not unknown.
    await sleep(kit.config.lagMonitor.intervalMs + 100);
    if (options.watchSeconds === undefined) {
      const status = await kit.status({ probe: true });
      io.out(renderStatus(status, options.json));
      return status.nodes.every((node) => node.health === 'up') ? EXIT.ok : EXIT.unhealthy;
    }
    let interrupted = false;
    const stop = () => {
      interrupted = true;
    };
    process.once('SIGINT', stop);
    try {
      while (!interrupted) {
        const text = renderStatus(await kit.status({ probe: true }), options.json);
        io.out(process.stdout.isTTY && !options.json ? `\x1b[2J\x1b[H${new Date().toISOString()}\n${text}` : text);
        for (let waited = 0; waited < options.watchSeconds * 1000 && !interrupted; waited += 100) await sleep(100);
      }
    } finally {
      process.off('SIGINT', stop);
    }
    return EXIT.ok;
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function renderStatus(status: KitStatus, json: boolean): string {
  if (json) return JSON.stringify(status, null, 2);
  const shards = renderTable(
    ['shard', 'weight', 'slots', 'share', 'state'],
    status.shards.map((shard) => [shard.shard, shard.weight, shard.slots, `${((shard.slots / SLOT_COUNT) * 100).toFixed(2)}%`, shard.standby ? 'standby' : 'owns keys']),
  );
  const nodes = renderTable(
    ['shard', 'node', 'role', 'health', 'where', 'breaker', 'in flight', 'queued', 'shed', 'lag ms', 'reading age ms', 'note'],
    status.nodes.map((node) => [node.shard, node.node, node.role, node.health, node.where, node.breaker, node.inFlight, node.queued, node.shed, node.lagMs, node.readingAgeMs, node.problem]),
  );
  const migrations =
    status.migrations.length === 0
      ? 'online migrations: none configured'
      : renderTable(['online migration', 'phase', 'version'], status.migrations.map((migration) => [migration.name, migration.phase, migration.version]));
  const move = status.rebalance;
  const rebalance = move
    ? `rebalance: ${move.cleaned ? 'finished' : move.switching ? `${move.phase}, switching the ring` : move.phase} (topology version ${move.version})`
    : 'rebalance: none (the ring is the config\'s)';
  return [shards, '', nodes, '', migrations, rebalance].join('\n');
}
