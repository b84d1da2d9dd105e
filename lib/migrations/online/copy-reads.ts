/**
 * The query options for reading rows that a migration or a rebalance copies or compares: every
 * such read of one migration uses the same, so both sides compare alike. Timestamps read exactly
 * (dialect/exact-temporal.ts), except on MySQL for a migration with a transform: there the exact
 * reading replaces the connection's own typeCast, and the transform is owed the values the
 * application reads (MySQL keeps fractional seconds only in DATETIME(n)/TIMESTAMP(n) anyway).
 */
import type { ShardDatabases } from '../../access/shard-databases.js';
import type { MigrationTables } from './migration-tables.js';

export function copyReads(databases: ShardDatabases, tables: MigrationTables, shard: string): Record<string, unknown> {
  const dialect = databases.dialectOf(shard);
  if (dialect.family === 'mysql' && !tables.copiedAsIs) return {};
  return dialect.exactReads(databases.primary(shard).client.config.connection);
}
