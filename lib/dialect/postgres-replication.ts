/**
 * PostgreSQL streaming replication signals. Positions are WAL LSNs (`16/B374D848`); the clock
 * is the primary's `clock_timestamp()`. A replica replicates while its WAL receiver streams
 * (a paused replay still counts: its lag grows, it is not unknown). Reading the receiver's
 * status needs pg_read_all_stats (or pg_monitor); without it, a running receiver counts.
 */
import type { Knex } from 'knex';
import { type ReplicationSignals, rowOf } from './dialect-adapter.js';

const CLOCK_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

function lsnValue(lsn: string): bigint {
  const [high = '0', low = '0'] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

const numberOrUndefined = (value: unknown) => (value === null || value === undefined ? undefined : Number(value));
const textOrUndefined = (value: unknown) => (typeof value === 'string' ? value : undefined);

export const postgresReplication: ReplicationSignals = {
  async ensureHeartbeatTable(primary: Knex, table: string) {
    await primary.raw('create table if not exists ?? (id integer primary key, ts_ms bigint not null)', [table]);
  },

  async writeHeartbeat(primary: Knex, table: string) {
    await primary.raw(
      `insert into ?? (id, ts_ms) values (1, ${CLOCK_MS}) on conflict (id) do update set ts_ms = excluded.ts_ms`,
      [table],
    );
  },

  async primaryState(primary: Knex) {
    // The insert position, not pg_current_wal_lsn() (the write position): with
    // synchronous_commit=off a commit returns before its WAL is written, so only the insert
    // position is sure to lie past it.
    const row = rowOf(await primary.raw(`select pg_current_wal_insert_lsn()::text as position, ${CLOCK_MS} as clock_ms`));
    return { clockMs: Number(row?.clock_ms), position: textOrUndefined(row?.position) };
  },

  async replicaState(replica: Knex, heartbeatTable: string) {
    const row = rowOf(
      await replica.raw(
        `select pg_is_in_recovery() as recovery, pg_last_wal_replay_lsn()::text as position,
                (select count(*) from pg_stat_wal_receiver) as receivers,
                (select status from pg_stat_wal_receiver limit 1) as receiver,
                (select ts_ms from ?? where id = 1) as heartbeat_ms`,
        [heartbeatTable],
      ),
    );
    const recovery = row?.recovery === true;
    // The row exists while a WAL receiver runs; its status is NULL to users without pg_read_all_stats.
    const streaming = Number(row?.receivers) > 0 && (row?.receiver === null || row?.receiver === 'streaming');
    return {
      replicating: recovery && streaming,
      position: textOrUndefined(row?.position),
      heartbeatMs: numberOrUndefined(row?.heartbeat_ms),
      ...(recovery ? (streaming ? {} : { problem: 'the WAL receiver is not streaming' }) : { problem: 'not in recovery (promoted?)' }),
    };
  },

  reached(position: string, target: string) {
    return lsnValue(position) >= lsnValue(target);
  },

  async finalPosition(primary: Knex) {
    // The flush position: every commit is flushed before it returns, and an idle server's insert
    // position can lie past a page header that no replica ever reports having replayed.
    return textOrUndefined(rowOf(await primary.raw('select pg_current_wal_flush_lsn()::text as position'))?.position);
  },

  async role(node: Knex) {
    // A primary once new sessions take writes: this session alone may predate a fence that
    // replicated here, and a promoted node keeps the fence's role default until promote()
    // resets it (a node probed in between would be followed while its sessions refuse writes).
    const row = rowOf(
      await node.raw(
        `select pg_is_in_recovery() as recovery, current_setting('default_transaction_read_only') as read_only,
                exists (select 1 from pg_db_role_setting
                        where setrole = (select oid from pg_roles where rolname = current_user)
                          and setdatabase = (select oid from pg_database where datname = current_database())
                          and 'default_transaction_read_only=on' = any (setconfig)) as fenced`,
      ),
    );
    return row?.recovery === false && row?.read_only === 'off' && row?.fenced === false ? 'primary' : 'replica';
  },

  async promote(node: Knex) {
    // pg_promote needs superuser or a GRANT EXECUTE (docs/failover.md). The application role's
    // read-only default came from the fenced primary's catalog: cleared here, and the sessions
    // opened under it (they stay read-only) ended.
    const row = rowOf(await node.raw('select pg_promote(true, 60) as promoted'));
    if (row?.promoted !== true) throw new Error('pg_promote() did not finish within 60 s');
    await node.raw(`set transaction read write; ${roleDefault('reset default_transaction_read_only')}; set session default_transaction_read_only = off; ${TERMINATE_OTHER_SESSIONS}`);
  },

  async fence(node: Knex) {
    // Without superuser a role can still set its own defaults in a database: new sessions start
    // read-only, this one is made so, and the others are ended. One query string, one session.
    await node.raw(`${roleDefault('set default_transaction_read_only = on')}; set session default_transaction_read_only = on; ${TERMINATE_OTHER_SESSIONS}`);
  },

  async unfence(node: Knex) {
    // Its transaction is made read-write before the ALTER, whatever the session's default.
    await node.raw(`set transaction read write; ${roleDefault('reset default_transaction_read_only')}; set session default_transaction_read_only = off`);
  },
};

/** ALTER ROLE for this role in this database only: other databases of the server may be other shards. */
function roleDefault(setting: string): string {
  return `do $$ begin execute format('alter role %I in database %I ${setting}', current_user, current_database()); end $$`;
}

/** Ends this role's other sessions in this database (a role may signal its own backends). */
const TERMINATE_OTHER_SESSIONS = `select count(pg_terminate_backend(pid)) from pg_stat_activity
  where usename = current_user and datname = current_database() and pid <> pg_backend_pid()`;
