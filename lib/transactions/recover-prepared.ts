/**
 * Recovery of atomic transactions whose coordinator died between prepare and the end: reads
 * every shard's prepared transactions, and for each one shardkit made (transaction-ids.ts):
 *
 *   the decision log says commit     COMMIT PREPARED / XA COMMIT it
 *   it says abort                    roll it back
 *   no decision, deadline + grace    record abort (unless the coordinator recorded commit a
 *     passed                         moment before: then commit), and apply that
 *   no decision yet                  leave it: its coordinator may still be deciding (waiting)
 *
 * Prepared transactions shardkit did not make are reported (`foreign`), never touched: they hold
 * locks and block vacuum, and their owner must settle them. Decisions no participant waits on any
 * more are forgotten once every shard could be read (abort rows after a retention, so that a
 * coordinator that is very late still finds its abort).
 */
import type { ShardDatabases } from '../access/shard-databases.js';
import { groupBy } from '../util/group-by.js';
import type { DecisionLog, DecisionRecord } from './decision-log.js';
import { deadlineOf, type ParticipantId, parseParticipantId } from './transaction-ids.js';

export interface RecoveryOptions {
  /** How long past its deadline a transaction without a decision is left to its coordinator. */
  graceMs: number;
  /** Only report what would be done. */
  dryRun?: boolean;
  now?: () => number;
}

export interface PreparedParticipant {
  shard: string;
  gid: string;
  gtrid: string;
  /** The coordinator's deadline (ms since the epoch). */
  deadlineMs: number;
  decision: 'commit' | 'abort' | undefined;
  /** How long ago it was prepared, where the database says (PostgreSQL). */
  ageMs: number | undefined;
}

export interface ForeignPrepared {
  shard: string;
  gid: string;
  ageMs: number | undefined;
}

export interface RecoveryReport {
  committed: PreparedParticipant[];
  rolledBack: PreparedParticipant[];
  /** Prepared participants whose coordinator may still decide. */
  waiting: PreparedParticipant[];
  /** Participants recovery tried to settle and could not (the shard failed meanwhile). */
  failed: (PreparedParticipant & { error: string })[];
  foreign: ForeignPrepared[];
  unreachable: { shard: string; error: string }[];
  forgotten: number;
}

/** Abort decisions are kept this many grace periods past their deadline. */
const ABORT_RETENTION_GRACES = 10;

export async function recoverPrepared(databases: ShardDatabases, log: DecisionLog, options: RecoveryOptions): Promise<RecoveryReport> {
  const now = options.now ?? Date.now;
  const scannedAt = now();
  const report: RecoveryReport = { committed: [], rolledBack: [], waiting: [], failed: [], foreign: [], unreachable: [], forgotten: 0 };
  const found = await listEveryShard(databases, report);
  const decisions = await log.getMany([...new Set(found.map(({ id }) => id.gtrid))]);
  for (const [gtrid, participants] of groupBy(found, ({ id }) => id.gtrid)) {
    let decision = decisions.get(gtrid)?.decision;
    const { deadlineMs } = participants[0]!.id;
    if (!decision && now() > deadlineMs + options.graceMs && !options.dryRun) {
      decision = await log.decide(gtrid, 'abort', []);
    }
    for (const { shard, gid, ageMs } of participants) {
      const entry: PreparedParticipant = { shard, gid, gtrid, deadlineMs, decision, ageMs };
      if (!decision) {
        report.waiting.push(entry);
        continue;
      }
      const outcome = decision === 'commit' ? report.committed : report.rolledBack;
      if (options.dryRun) {
        outcome.push(entry);
        continue;
      }
      const protocol = databases.dialectOf(shard).twoPhase!;
      const db = databases.primary(shard);
      const on = { raw: (sql: string) => db.raw(sql) };
      try {
        await (decision === 'commit' ? protocol.commitPrepared(on, gid) : protocol.rollbackPrepared(on, gid));
        outcome.push(entry);
      } catch (error) {
        // Settled meanwhile by its coordinator, or by another recovery: nothing left to do.
        if (protocol.isUnknownTransaction(error)) outcome.push(entry);
        else report.failed.push({ ...entry, error: errorText(error) });
      }
    }
  }
  if (report.unreachable.length === 0 && report.failed.length === 0 && !options.dryRun) {
    const waitedOn = new Set(report.waiting.map((entry) => entry.gtrid));
    const settled = (await log.all(1000)).filter((record) => !waitedOn.has(record.gtrid) && forgettable(record, options.graceMs, scannedAt));
    await log.forget(settled.map((record) => record.gtrid));
    report.forgotten = settled.length;
  }
  return report;
}

/** Every shard's prepared transactions: shardkit's parsed, the others reported as foreign. */
async function listEveryShard(databases: ShardDatabases, report: RecoveryReport): Promise<{ shard: string; gid: string; id: ParticipantId; ageMs: number | undefined }[]> {
  const seen = new Set<string>();
  const found: { shard: string; gid: string; id: ParticipantId; ageMs: number | undefined }[] = [];
  for (const shard of databases.shardNames) {
    const protocol = databases.dialectOf(shard).twoPhase;
    if (!protocol) continue;
    try {
      for (const { gid, preparedAt } of await protocol.listPrepared(databases.primary(shard))) {
        // MySQL lists the whole server's XA transactions: shards that share a server see them all.
        if (seen.has(gid)) continue;
        seen.add(gid);
        const ageMs = preparedAt === undefined ? undefined : Math.max(0, Date.now() - preparedAt);
        const id = parseParticipantId(gid);
        if (id) found.push({ shard, gid, id, ageMs });
        else report.foreign.push({ shard, gid, ageMs });
      }
    } catch (error) {
      report.unreachable.push({ shard, error: errorText(error) });
    }
  }
  return found;
}

/**
 * Nothing can wait on the decision any more. Every participant prepares before the coordinator's
 * deadline, so a scan that began past deadline + grace saw every one still prepared: a commit is
 * forgotten then; an abort only after its retention, for a coordinator that is very late.
 */
function forgettable(record: DecisionRecord, graceMs: number, scannedAt: number): boolean {
  const deadline = deadlineOf(record.gtrid);
  if (deadline === undefined) return false;
  const graces = record.decision === 'commit' ? 1 : ABORT_RETENTION_GRACES;
  return scannedAt > deadline + graces * Math.max(graceMs, 1000);
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}
