/**
 * shardkit failover SHARD --to NODE: a planned switch of a shard's primary to one of its
 * failover candidates (kit.failover(), docs/failover.md). Writes of this process are held
 * meanwhile; other instances follow when the old primary refuses their writes, or at their next
 * read of the recorded switches. Exits 1 when the switch failed (the primary stays as it was).
 */
import type { Command } from 'commander';
import { type CliIo, EXIT, type GlobalOptions, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';

export function registerFailover(program: Command, io: CliIo, run: Run): void {
  program
    .command('failover')
    .description("switch a shard's primary to one of its failover candidates (planned)")
    .argument('<shard>', 'the shard whose primary to switch')
    .requiredOption('--to <node>', 'the candidate to promote (one of the shard\'s failoverCandidates)')
    .option('--timeout-ms <ms>', 'how long the switch may take while writes are held (default 30000)', (text) => {
      const value = Number(text);
      if (!Number.isInteger(value) || value <= 0) throw new UsageError(`--timeout-ms needs a positive whole number of milliseconds, got ${JSON.stringify(text)}`);
      return value;
    })
    .action(
      run(async (shard: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { to: string; timeoutMs?: number }>();
        return withKit(options.config, async (kit) => {
          const event = await kit.failover(shard, { to: options.to, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) });
          io.out(
            options.json
              ? JSON.stringify(event, null, 2)
              : `${shard}: primary is now ${event.to} (was ${event.from}); writes were held ${Math.round(event.heldMs ?? 0)} ms${event.recordError ? `\nwarning: the switch is not recorded (${event.recordError}); other instances find it when ${event.from} refuses their writes` : ''}`,
          );
          return EXIT.ok;
        });
      }),
    );
}
