/** What every subcommand gets: parsed options, output streams, and a kit opened from the config. */
import { loadConfig } from '../config/load-config.js';
import { createShardKit, type ShardKit } from '../shard-kit.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Exit codes, documented in docs/operating.md ("CLI"). */
export const EXIT = { ok: 0, failed: 1, usage: 2, gate: 3, locked: 4, unhealthy: 5 } as const;

export class UsageError extends Error {}

export async function withKit<T>(configPath: string | undefined, work: (kit: ShardKit) => Promise<T>): Promise<T> {
  const kit = await createShardKit(await loadConfig(configPath));
  try {
    return await work(kit);
  } finally {
    await kit.close();
  }
}
