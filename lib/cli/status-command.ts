/**
 * shardkit status [--watch [SECONDS]]: the shards with their share of the ring, every node with
 * its health (each is asked to answer within 2 s), role, breaker, in-flight and queued queries
 * and replica lag, the online migrations with the phase this instance applies, and the
 * degradation level (its override, if one is set). Exits 5 when
 * a node is down or stalled. --watch redraws it until interrupted.
 */
import type { Command } from 'commander';
import { SLOT_COUNT } from '../hashing/key-hasher.js';
import type { CacheStats } from '../cache/read-cache.js';
import type { KitStatus } from '../shard-kit.js';
import { type CliIo, EXIT, type GlobalOptions, positiveNumber, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { renderTable } from './render-table.js';

export function registerStatus(program: Command, io: CliIo, run: Run): void {
  program
    .command('status')
    .description('shards, nodes (health, role, breaker, load, replica lag), migrations; exits 5 when a node is down')
    .option('--watch [seconds]', 'redraw every SECONDS (default 2) until Ctrl-C', positiveNumber('watch'))
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { watch?: number | true }>();
        return withKit(options.config, async (kit) => {
          // Give the lag monitor two probe cycles, so that replica lag is measured, not unknown: a
          // replica probed in the first cycle may sit a few ms behind the primary's only sighting
          // and is then bounded by its (possibly old) heartbeat; the second proves it by position.
          await sleep(2 * kit.config.lagMonitor.intervalMs + 100);
          const print = (status: KitStatus) => io.out(options.json ? JSON.stringify(status, null, 2) : renderStatus(status, io.columns));
          if (options.watch === undefined) {
            const status = await kit.status({ probe: true });
            print(status);
            return status.nodes.every((node) => node.health === 'up') ? EXIT.ok : EXIT.unhealthy;
          }
          const seconds = options.watch === true ? 2 : options.watch;
          let interrupted = false;
          const stop = () => {
            interrupted = true;
          };
          process.once('SIGINT', stop);
          try {
            while (!interrupted) {
              const status = await kit.status({ probe: true });
              if (process.stdout.isTTY && !options.json) io.out(`\x1b[2J\x1b[H${new Date().toISOString()}`);
              print(status);
              for (let waited = 0; waited < seconds * 1000 && !interrupted; waited += 100) await sleep(100);
            }
          } finally {
            process.off('SIGINT', stop);
          }
          return EXIT.ok;
        });
      }),
    );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function renderStatus(status: KitStatus, width: number): string {
  const shards = renderTable(
    ['shard', 'weight', 'slots', 'share', 'state'],
    status.shards.map((shard) => [shard.shard, shard.weight, shard.slots, `${((shard.slots / SLOT_COUNT) * 100).toFixed(2)}%`, shard.standby ? 'standby' : 'owns keys']),
    width,
  );
  const nodes = renderTable(
    [
      'shard',
      'node',
      'role',
      'health',
      // Narrow terminals lose the address first, then the reading's age, then the load counts.
      { header: 'where', optional: true, priority: 0 },
      'breaker',
      { header: 'in flight', optional: true, priority: 2 },
      { header: 'queued', optional: true, priority: 2 },
      { header: 'shed', optional: true, priority: 2 },
      'lag ms',
      { header: 'reading age ms', optional: true, priority: 1 },
      { header: 'note', wrap: true },
    ],
    status.nodes.map((node) => [node.shard, node.node, node.role, node.health, node.where, node.breaker, node.inFlight, node.queued, node.shed, node.lagMs, node.readingAgeMs, node.problem]),
    width,
  );
  const migrations =
    status.migrations.length === 0
      ? 'online migrations: none configured'
      : renderTable(['online migration', 'phase', 'version'], status.migrations.map((migration) => [migration.name, migration.phase, migration.version]), width);
  const move = status.rebalance;
  const rebalance = move
    ? `rebalance: ${move.cleaned ? 'finished' : move.switching ? `${move.phase}, switching the ring` : move.phase} (topology version ${move.version})`
    : "rebalance: none (the ring is the config's)";
  const degradation = status.degradation;
  const degraded = degradation && `degradation: level ${degradation.level} (${degradation.source === 'override' ? `override: ${degradation.override?.reason ?? ''}` : 'health signal'}; shardkit degrade status)`;
  return [shards, '', nodes, '', migrations, rebalance, ...(degraded ? [degraded] : []), ...renderCache(status.cache, width)].join('\n');
}

/** The read cache's counters: every instance's that reported to Redis lately, or a note that only processes know their own. */
function renderCache(cache: KitStatus['cache'], width: number): string[] {
  if (!cache) return [];
  if (!cache.instances) return ['', 'read cache: in-process only (each application process counts its own; see kit.cacheStats or the shardkit_cache_* metrics)'];
  const ratio = (stats: CacheStats) => {
    const reads = stats.hits + stats.coalesced + stats.misses;
    return reads === 0 ? '-' : `${((100 * (stats.hits + stats.coalesced + stats.sharedHits)) / reads).toFixed(1)}%`;
  };
  const rows = cache.instances.map(({ instance, ageMs, stats }) => [instance.slice(0, 8), ratio(stats), stats.hits, stats.sharedHits, stats.misses, stats.staleServed, stats.entries, Math.round(ageMs / 1000)]);
  return [
    '',
    cache.instances.length === 0
      ? 'read cache: no instance reported to Redis in the last 10 s'
      : renderTable(['instance', 'hit ratio', 'hits', 'shared hits', 'misses', { header: 'stale', optional: true, priority: 1 }, { header: 'entries', optional: true, priority: 0 }, { header: 'age s', optional: true, priority: 0 }], rows, width),
  ];
}
