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
};
