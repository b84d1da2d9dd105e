/**
 * Advisory locks, as each database offers them, behind one interface:
 *
 *   lockKeys     per-key locks held until the transaction ends, taken in ascending order so
 *                that two transactions cannot deadlock on them (online-migration key sync)
 *   tryLock      one named lock held on a dedicated connection until released, failing at once
 *                if someone holds it (one runner per online migration)
 *
 * PostgreSQL: pg_advisory_xact_lock / pg_try_advisory_lock. MySQL/MariaDB: GET_LOCK, which is
 * per session, so key locks are released explicitly before the connection returns to the pool.
 * PGlite has one connection for everything: a transaction already excludes every other query,
 * and a process-local registry stands in for the named lock.
 */
import type { Knex } from 'knex';
import { holdConnection } from '../knex/connections.js';
import { rowOf } from './dialect-adapter.js';

export type ReleaseLock = () => Promise<void>;

export interface AdvisoryLocks {
  /** Locks every id for the rest of `trx`; returns what must run before `trx` ends (MySQL). */
  lockKeys(trx: Knex.Transaction, ids: readonly bigint[]): Promise<ReleaseLock>;
  tryLock(db: Knex, id: bigint): Promise<ReleaseLock | undefined>;
}

const ascending = (ids: readonly bigint[]) => [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const nothing: ReleaseLock = async () => {};

/** A session lock held on a connection taken out of the pool for as long as the lock lives. */
async function sessionLock(db: Knex, acquire: string, release: string, id: string): Promise<ReleaseLock | undefined> {
  const held = await holdConnection(db);
  try {
    const row = rowOf(await held.raw(acquire, [id]));
    if (Number(row?.locked) === 1 || row?.locked === true) {
      return async () => {
        try {
          await held.raw(release, [id]);
        } finally {
          await held.release();
        }
      };
    }
  } catch (error) {
    await held.release();
    throw error;
  }
  await held.release();
  return undefined;
}

export const postgresLocks: AdvisoryLocks = {
  async lockKeys(trx, ids) {
    for (const id of ascending(ids)) await trx.raw('select pg_advisory_xact_lock(?)', [id.toString()]);
    return nothing;
  },
  tryLock: (db, id) => sessionLock(db, 'select pg_try_advisory_lock(?::bigint) as locked', 'select pg_advisory_unlock(?::bigint)', id.toString()),
};

export const mysqlLocks: AdvisoryLocks = {
  async lockKeys(trx, ids) {
    const names = ascending(ids).map((id) => `shardkit:${id}`);
    const taken: string[] = [];
    const release = async () => {
      for (const name of taken) await trx.raw('select release_lock(?)', [name]);
    };
    for (const name of names) {
      const [rows] = (await trx.raw('select get_lock(?, 30) as locked', [name])) as [{ locked: unknown }[]];
      if (Number(rows[0]?.locked) !== 1) {
        await release();
        throw new Error(`could not take advisory lock ${name} within 30 s`);
      }
      taken.push(name);
    }
    return release;
  },
  tryLock: (db, id) => sessionLock(db, 'select get_lock(?, 0) as locked', 'select release_lock(?)', `shardkit-runner:${id}`),
};

const heldInProcess = new Set<string>();

export const pgliteLocks: AdvisoryLocks = {
  async lockKeys() {
    return nothing;
  },
  async tryLock(db, id) {
    const key = `${lockScope(db)}:${id}`;
    if (heldInProcess.has(key)) return undefined;
    heldInProcess.add(key);
    return async () => {
      heldInProcess.delete(key);
    };
  },
};

const scopes = new WeakMap<object, number>();
let nextScope = 0;

/** One scope per PGlite database: the knex client object is unique to it. */
function lockScope(db: Knex): number {
  let scope = scopes.get(db.client);
  if (scope === undefined) {
    scope = nextScope++;
    scopes.set(db.client, scope);
  }
  return scope;
}
