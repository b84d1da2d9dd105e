/**
 * shardkit degrade set LEVEL [--reason TEXT] [--for DURATION] | degrade clear | degrade status:
 * the kit's degradation level (docs/degradation.md). `set` stores the operator's override on the
 * control database, which every instance follows within `migrations.pollIntervalMs` (level 0
 * included: it forces no degradation whatever the health signals say); `--for 10m` makes it end
 * by itself. `clear` returns every instance to its own health signal. `status` shows the
 * override and what each level does. Exits 2 for a level the config does not have.
 */
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { LevelEffects } from '../config/config-types.js';
import type { DegradationStatus } from '../kit/kit-degradation.js';
import { type CliIo, EXIT, type GlobalOptions, UsageError, withKit } from './cli-context.js';
import type { Run } from './main.js';
import { renderTable } from './render-table.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function registerDegrade(program: Command, io: CliIo, run: Run): void {
  const degrade = program.command('degrade').description('degradation levels of every instance: set, clear, status');
  degrade
    .command('set')
    .description('set the level every instance follows (0 to the highest configured), until cleared or --for ends')
    .argument('<level>', 'the level, a whole number')
    .option('--reason <text>', 'why, for the event, the logs and status')
    .option('--for <duration>', 'end by itself after this long: 90s, 10m, 2h', parseDuration)
    .action(
      run(async (levelText: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions & { reason?: string; for?: number }>();
        return withKit(options.config, async (kit) => {
          const level = Number(levelText);
          const highest = kit.degradation.maxLevel;
          if (!/^\d+$/.test(levelText) || level > highest) throw new UsageError(`the level must be a whole number from 0 to ${highest}, got ${JSON.stringify(levelText)}`);
          const override = await kit.setDegradation(level, {
            ...(options.reason === undefined ? {} : { reason: options.reason }),
            ...(options.for === undefined ? {} : { forMs: options.for }),
            setBy: operator(),
          });
          const follow = kit.config.migrations.pollIntervalMs;
          io.out(
            options.json
              ? JSON.stringify({ override, followedWithinMs: follow })
              : `degradation level ${level} set for every instance (they follow within ${follow} ms)${override.expiresAt === undefined ? ', until cleared' : `, until ${new Date(override.expiresAt).toISOString()}`}: ${override.reason}`,
          );
          return EXIT.ok;
        });
      }),
    );
  degrade
    .command('clear')
    .description("remove the override: every instance follows its own health signal again")
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions>();
        return withKit(options.config, async (kit) => {
          await kit.clearDegradation();
          io.out(options.json ? JSON.stringify({ cleared: true }) : 'degradation override cleared: every instance follows its own health signal');
          return EXIT.ok;
        });
      }),
    );
  degrade
    .command('status')
    .description('the override in force, and what each level does')
    .action(
      run(async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<GlobalOptions>();
        return withKit(options.config, async (kit) => {
          const status = kit.degradation;
          const levels = kit.config.degradation.levels;
          io.out(options.json ? JSON.stringify({ ...status, levels }, null, 2) : renderDegradation(status, levels, io.columns, Date.now()));
          return EXIT.ok;
        });
      }),
    );
}

/** `90s`, `10m`, `2h`, `500ms`, `1d` in milliseconds; a usage error otherwise. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNITS[match[2]!]! : Number.NaN;
  if (!Number.isFinite(ms) || ms < 1) throw new UsageError(`--for needs a duration with a unit (90s, 10m, 2h), got ${JSON.stringify(text)}`);
  return Math.round(ms);
}

/** Who runs the command, for the override's set_by. */
function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No user entry (some containers): the host names the operator well enough.
  }
  return `${user}@${hostname()} (shardkit CLI)`;
}

export function renderDegradation(status: DegradationStatus, levels: readonly LevelEffects[], width: number, now: number): string {
  const { override } = status;
  const head = override
    ? [
        `degradation: level ${status.level} of ${status.maxLevel}, set by an override`,
        `  reason:  ${override.reason}`,
        `  set by:  ${override.setBy}, ${new Date(override.setAt).toISOString()}`,
        `  ends:    ${override.expiresAt === undefined ? 'when cleared (shardkit degrade clear)' : `in ${inWords(override.expiresAt - now)}, ${new Date(override.expiresAt).toISOString()}`}`,
      ]
    : [`degradation: no override; each instance follows its own health signal`, `  this process: level ${status.level}`];
  const upTo = (ms: number) => (ms > 0 ? `up to ${inWords(ms)}` : 'no');
  const rows = levels.map((effects, level) => [
    level === status.level ? `${level} *` : String(level),
    effects.shedBackground ? 'shed' : 'served',
    effects.pauseBackfill ? 'paused' : 'run',
    effects.replicaMaxLagMs > 0 ? upTo(effects.replicaMaxLagMs) : "caller's",
    upTo(effects.serveStaleMs),
    effects.scatter === 'critical-only' ? 'critical only' : 'all',
  ]);
  const table = renderTable(['level', 'background', 'backfills', { header: 'replica lag', wrap: true }, { header: 'past cache TTL', wrap: true }, 'scatter reads'], rows, width);
  return [...head, '', table, '', '* in force here; critical callers are never degraded'].join('\n');
}

function inWords(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
