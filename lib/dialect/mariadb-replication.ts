/**
 * MariaDB GTID replication signals. Positions are GTID lists (`0-1-42,1-3-7`: domain-server-
 * sequence per replication domain); the clock is the primary's NOW(6). A replica replicates
 * while both its IO and SQL threads run (SHOW REPLICA STATUS needs the SLAVE MONITOR privilege).
 * On MySQL, whose GTID sets have another form, positions are not read: lag comes from the
 * heartbeat alone and consistency tokens are served by the primary.
 */
import type { Knex } from 'knex';
import { type ReplicationSignals, rowOf } from './dialect-adapter.js';

const CLOCK_MS = 'ROUND(UNIX_TIMESTAMP(NOW(6)) * 1000)';
const MARIADB_GTID = /^\d+-\d+-\d+$/;

/** Highest applied sequence per replication domain. */
function gtidDomains(position: string): Map<string, bigint> {
  const domains = new Map<string, bigint>();
  for (const part of position.split(',').map((entry) => entry.trim())) {
    if (!MARIADB_GTID.test(part)) continue;
    const [domain = '', , sequence = '0'] = part.split('-');
    const value = BigInt(sequence);
    if (value > (domains.get(domain) ?? -1n)) domains.set(domain, value);
  }
  return domains;
}

function gtidOrUndefined(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value === '' || value.split(',').every((part) => MARIADB_GTID.test(part.trim())) ? value : undefined;
}

/** The server's GTID position from `variable`; undefined on MySQL, whose GTID sets differ. */
async function gtidPosition(node: Knex, version: unknown, variable: 'gtid_binlog_pos' | 'gtid_slave_pos') {
  if (!String(version).includes('MariaDB')) return undefined;
  return gtidOrUndefined(rowOf(await node.raw(`select @@${variable} as position`))?.position);
}

const numberOrUndefined = (value: unknown) => (value === null || value === undefined ? undefined : Number(value));

export const mariadbReplication: ReplicationSignals = {
  async ensureHeartbeatTable(primary: Knex, table: string) {
    await primary.raw('create table if not exists ?? (id int primary key, ts_ms bigint not null)', [table]);
  },

  async writeHeartbeat(primary: Knex, table: string) {
    await primary.raw(`insert into ?? (id, ts_ms) values (1, ${CLOCK_MS}) on duplicate key update ts_ms = values(ts_ms)`, [
      table,
    ]);
  },

  async primaryState(primary: Knex) {
    const row = rowOf(await primary.raw(`select ${CLOCK_MS} as clock_ms, @@version as version`));
    return { clockMs: Number(row?.clock_ms), position: await gtidPosition(primary, row?.version, 'gtid_binlog_pos') };
  },

  async replicaState(replica: Knex, heartbeatTable: string) {
    const status = rowOf(await replica.raw('show replica status'));
    const io = status?.Slave_IO_Running ?? status?.Replica_IO_Running;
    const sql = status?.Slave_SQL_Running ?? status?.Replica_SQL_Running;
    const replicating = io === 'Yes' && sql === 'Yes';
    const row = rowOf(
      await replica.raw('select @@version as version, (select ts_ms from ?? where id = 1) as heartbeat_ms', [heartbeatTable]),
    );
    return {
      replicating,
      position: await gtidPosition(replica, row?.version, 'gtid_slave_pos'),
      heartbeatMs: numberOrUndefined(row?.heartbeat_ms),
      ...(replicating ? {} : { problem: status ? `replication threads: IO ${String(io)}, SQL ${String(sql)}` : 'not a replica' }),
    };
  },

  reached(position: string, target: string) {
    const applied = gtidDomains(position);
    for (const [domain, sequence] of gtidDomains(target)) {
      if ((applied.get(domain) ?? -1n) < sequence) return false;
    }
    return true;
  },

  async finalPosition(primary: Knex) {
    return (await this.primaryState(primary)).position;
  },

  async role(node: Knex) {
    const row = rowOf(await node.raw('select @@global.read_only as read_only'));
    if (Number(row?.read_only) !== 0) return 'replica';
    // A writable server still replicating is a replica someone forgot to make read-only.
    const status = rowOf(await node.raw('show replica status'));
    const running = [status?.Slave_IO_Running, status?.Slave_SQL_Running].some((state) => state === 'Yes');
    return running ? 'replica' : 'primary';
  },

  async promote(node: Knex) {
    // Needs REPLICATION SLAVE ADMIN and READ_ONLY ADMIN (or SUPER): docs/failover.md. RESET
    // forgets the old primary, so that a restart does not replicate from it again.
    await node.raw('stop replica');
    await node.raw('reset replica all');
    await node.raw('set global read_only = 0');
  },

  async fence(node: Knex) {
    // read_only holds for every session, open or new, of users without READ_ONLY ADMIN.
    await node.raw('set global read_only = 1');
  },

  async unfence(node: Knex) {
    await node.raw('set global read_only = 0');
  },

};
