/** What every subcommand gets: output streams and their width, and a kit opened from the config. */
import { loadConfig } from '../config/load-config.js';
import { createShardKit, type ShardKit } from '../shard-kit.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The width output must fit. */
  columns: number;
  /** Where progress bars draw. */
  progress: NodeJS.WriteStream;
}

/** Exit codes, documented in docs/operating.md ("The CLI"). */
export const EXIT = { ok: 0, failed: 1, usage: 2, gate: 3, locked: 4, unhealthy: 5 } as const;

export class UsageError extends Error {}

/** The options every command takes (commander's global options). */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

export async function withKit<T>(configPath: string | undefined, work: (kit: ShardKit) => Promise<T>): Promise<T> {
  const kit = await createShardKit(await loadConfig(configPath));
  try {
    return await work(kit);
  } finally {
    await kit.close();
  }
}

/** A positive number option (`--max-rate 500`), or a usage error naming the flag. */
export function positiveNumber(flag: string): (text: string) => number {
  return (text) => {
    const parsed = Number(text);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new UsageError(`--${flag} needs a positive number, got ${JSON.stringify(text)}`);
    return parsed;
  };
}

/** `--shard a --shard b`: commander's way of collecting a repeated option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
