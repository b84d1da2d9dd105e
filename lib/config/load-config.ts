/**
 * Finds the configuration: `SHARDKIT_CONFIG` if set, else `shards.config.ts` in the working
 * folder. `path#name` picks a named export instead of the default one
 * (`SHARDKIT_CONFIG=shards.cluster.config.ts#mariadb`). TypeScript files load when the process
 * runs under tsx (as the CLI, demo and tests do); plain node needs a .js/.mjs file.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigLoadError } from '../errors.js';
import type { ShardKitConfig } from './config-types.js';

export const DEFAULT_CONFIG_FILE = 'shards.config.ts';

export async function loadConfig(location = process.env.SHARDKIT_CONFIG || DEFAULT_CONFIG_FILE): Promise<ShardKitConfig> {
  const [file = '', exportName = 'default'] = location.split('#');
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new ConfigLoadError(location, 'file not found; set SHARDKIT_CONFIG to a config file path');
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
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
