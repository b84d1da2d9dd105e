/**
 * Finds the configuration: `SHARDKIT_CONFIG` if set, else `shards.config.ts` in the working
 * folder. `path#name` picks a named export instead of the default one
 * (`SHARDKIT_CONFIG=shards.cluster.config.ts#mariadb`). A TypeScript file is loaded through
 * tsx when the process cannot load it by itself (see typescript-loader.ts).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigLoadError } from '../errors.js';
import type { ShardKitConfig } from './config-types.js';
import { importFile } from './typescript-loader.js';

export const DEFAULT_CONFIG_FILE = 'shards.config.ts';

export async function loadConfig(location = process.env.SHARDKIT_CONFIG || DEFAULT_CONFIG_FILE): Promise<ShardKitConfig> {
  const [file = '', exportName = 'default'] = location.split('#');
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new ConfigLoadError(location, 'file not found; set SHARDKIT_CONFIG to a config file path');
  }
  let module: Record<string, unknown>;
  try {
    module = await importFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigLoadError(location, `the file failed to load: ${reason}`, error);
  }
  const config = module[exportName];
  if (config === undefined) {
    const exported = Object.keys(module).join(', ') || 'nothing';
    throw new ConfigLoadError(location, `it has no export "${exportName}" (it exports ${exported})`);
  }
  return config as ShardKitConfig;
}
