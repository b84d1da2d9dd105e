import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { KnexClientClass } from '../access/guarded-client.js';
import { connectionOf } from '../config/connection-vault.js';
import type { PgliteConnection } from '../config/config-types.js';
import { DriverMissingError } from '../errors.js';
import { pgliteLocks } from './advisory-locks.js';
import type { DialectAdapter } from './dialect-adapter.js';
import { insertMissingAsJson } from './insert-missing.js';
import { postgresKeyColumn } from './key-column.js';
import { postgresPrimaryKey } from './primary-key.js';
import { freshPgliteDump } from './pglite-template.js';
import { classifyPostgresError } from './postgres-dialect.js';

type ClientClass = new (
  ...args: any[]
) => {
  processResponse(obj: { method?: string }, runner: unknown): unknown;
  destroy(callback?: (error?: unknown) => void): Promise<void>;
};

/**
 * Two fixes over knex-pglite 0.14: it derives the command tag from the builder method, so `del()`
 * is tagged 'DEL' and resolves to the raw result instead of the deleted-row count every other
 * dialect returns; and it closes the database only through the pool, so a database that never
 * served a query stayed open and its WASM timers kept the process alive after destroy().
 */
function shardkitClient<T extends ClientClass>(Client: T): T {
  return class extends Client {
    declare pglite: { closed: boolean; close(): Promise<void> };

    override processResponse(obj: { method?: string }, runner: unknown): unknown {
      return super.processResponse(obj.method === 'del' ? { ...obj, method: 'delete' } : obj, runner);
    }

    override async destroy(callback?: (error?: unknown) => void): Promise<void> {
      await super.destroy();
      try {
        if (!this.pglite.closed) await this.pglite.close();
      } catch (error) {
        if (!callback) throw error;
        return callback(error);
      }
      callback?.();
    }
  };
}

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
    return { client: shardkitClient(ClientPgLite as unknown as ClientClass) as unknown as KnexClientClass, connection: { pglite }, extra: { dialect: 'postgres' } };
  },
  driverPackages: ['@electric-sql/pglite', 'knex-pglite'],
  poolSize: () => 1,
  // In-process: no socket to destroy, and the single connection is the database itself.
  destroySocket: () => false,
  affectedRows: (response) => Number((response as { affectedRows?: unknown } | null)?.affectedRows ?? 0),
  maxParameters: 65_535,
  cancellable: false,
  locks: pgliteLocks,
  classifyError: classifyPostgresError,
  // PGlite sends a Date parameter as ISO text in UTC.
  insertMissing: insertMissingAsJson((date) => date.toISOString()),
  primaryKey: postgresPrimaryKey,
  keyColumn: postgresKeyColumn,
};
