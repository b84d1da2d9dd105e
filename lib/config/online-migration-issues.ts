/**
 * What is wrong with the configured online migrations, by config path: duplicate names, keys
 * that miss a table's shard key, tables the config does not know, functions missing.
 */
import type { ConfigIssue } from '../errors.js';
import type { ResolvedConfig } from './config-types.js';
import type { OnlineMigration } from './online-migration.js';

export function onlineMigrationIssues(migrations: readonly OnlineMigration[], config: Pick<ResolvedConfig, 'tables' | 'globalTables'>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const names = new Set<string>();
  migrations.forEach((migration, index) => {
    const path = `onlineMigrations[${index}]`;
    if (names.has(migration.name)) issues.push({ path: `${path}.name`, message: `duplicate online migration "${migration.name}"` });
    names.add(migration.name);
    if (!Array.isArray(migration.key) || migration.key.length === 0) issues.push({ path: `${path}.key`, message: 'needs at least one key column' });
    if (typeof migration.transform !== 'function') issues.push({ path: `${path}.transform`, message: 'must be a function' });
    if (typeof migration.reverse !== 'function') issues.push({ path: `${path}.reverse`, message: 'must be a function (cutover writes back to the source)' });
    for (const side of ['source', 'target'] as const) {
      const table = migration[side];
      const sharded = config.tables.get(table);
      if (!sharded && !config.globalTables.has(table)) {
        issues.push({ path: `${path}.${side}`, message: `"${table}" is not a table in the config` });
      } else if (sharded && Array.isArray(migration.key) && !migration.key.includes(sharded.shardKey)) {
        issues.push({ path: `${path}.key`, message: `must include the shard key "${sharded.shardKey}" of ${side} table "${table}"` });
      }
    }
    const rate = migration.shadowSampleRate;
    if (rate !== undefined && !(rate >= 0 && rate <= 1)) issues.push({ path: `${path}.shadowSampleRate`, message: 'must be between 0 and 1' });
  });
  return issues;
}
