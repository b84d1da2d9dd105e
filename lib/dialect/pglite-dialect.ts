import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { KnexClientClass } from '../knex/guarded-client.js';
import { pgliteClient } from '../knex/pglite-client.js';
import { connectionOf } from '../config/connection-vault.js';
import type { PgliteConnection } from '../config/config-types.js';
import { DriverMissingError } from '../errors.js';
import { pgliteLocks } from './advisory-locks.js';
import type { DialectAdapter } from './dialect-adapter.js';
import { insertMissingAsJson } from './insert-missing.js';
import { postgresRowChecksums } from './row-checksums.js';
import { pgliteExactReads } from './exact-temporal.js';
import { postgresKeyColumn } from './key-column.js';
import { postgresPrimaryKey } from './primary-key.js';
import { freshPgliteDump } from './pglite-template.js';
import { classifyPostgresError } from './postgres-dialect.js';

/** Embedded PostgreSQL (WASM) through knex-pglite; one connection per database, no replication. */
export const pgliteDialect: DialectAdapter = {
  family: 'postgres',
  async knexOptions(node) {
    const { dataDir } = connectionOf(node) as PgliteConnection;
    const [{ PGlite }, { default: ClientPgLite }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('knex-pglite'),
    ]).catch((error: unknown) => {
      throw new DriverMissingError('pglite', ['@electric-sql/pglite', 'knex-pglite'], error);
    });
    const folder = dataDir === undefined ? undefined : resolve(dataDir);
    const exists = folder !== undefined && existsSync(join(folder, 'PG_VERSION'));
    // PGlite does not create missing parent folders.
    if (folder !== undefined) await mkdir(dirname(folder), { recursive: true });
    const pglite = exists
      ? new PGlite(folder)
      : new PGlite({ dataDir: folder, loadDataDir: await freshPgliteDump(PGlite) });
    return { client: pgliteClient(ClientPgLite as never) as unknown as KnexClientClass, connection: { pglite }, extra: { dialect: 'postgres' } };
  },
  driverPackages: ['@electric-sql/pglite', 'knex-pglite'],
  poolSize: () => 1,
  // In-process: no socket to destroy, and the single connection is the database itself.
  destroySocket: () => false,
  affectedRows: (response) => Number((response as { affectedRows?: unknown } | null)?.affectedRows ?? 0),
  maxParameters: 65_535,
  bigintsAs: 'number',
  cancellable: false,
  locks: pgliteLocks,
  classifyError: classifyPostgresError,
  // PGlite sends a Date parameter as ISO text in UTC.
  insertMissing: insertMissingAsJson((date) => date.toISOString()),
  rowChecksums: postgresRowChecksums,
  exactReads: () => pgliteExactReads,
  primaryKey: postgresPrimaryKey,
  keyColumn: postgresKeyColumn,
};
