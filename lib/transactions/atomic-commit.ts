/**
 * The coordinator of one atomic (cross-shard) transaction: participants join as statements
 * reach their shards, each on a connection held for the transaction; at the end, two-phase
 * commit (dialect/two-phase.ts):
 *
 *   1. prepare every participant (all in parallel); any failure rolls every one back
 *   2. past the deadline nothing is decided: roll every one back
 *   3. record the decision to commit in the decision log (decision-log.ts): the commit point
 *   4. commit every participant; one that cannot be reached now is committed by recovery
 *      (recover-prepared.ts), so the transaction still counts as committed
 *   5. forget the decision once every participant committed
 *
 * One participant commits in one phase (nothing to coordinate). If the decision cannot be
 * recorded nor read back, the outcome is unknown to this process: TransactionInDoubtError,
 * and recovery settles it (commit if the row exists, otherwise roll back).
 *
 * Each step is reported (`onStep`) before the next one starts: metrics, and the crash tests,
 * which kill a coordinator at every step.
 */
import type { Knex } from 'knex';
import { withScope } from '../access/call-scope.js';
import type { IsolationLevel, TwoPhaseCommit } from '../dialect/two-phase.js';
import { type QueryPriority, TransactionAbortedError, TransactionInDoubtError } from '../errors.js';
import { type HeldConnection, holdConnection } from '../knex/connections.js';
import type { DecisionLog } from './decision-log.js';
import { participantId } from './transaction-ids.js';

export type TwoPhaseStep = 'preparing' | 'prepared' | 'decided' | 'committed' | 'rolled-back' | 'finished';

export interface TwoPhaseEvent {
  gtrid: string;
  step: TwoPhaseStep;
  /** The participant's shard, for a step of one participant. */
  shard?: string;
  participants: number;
}

export interface Participant {
  readonly shard: string;
  readonly gid: string;
  /** The connection its statements, its prepare and its decision run on (released at the end). */
  readonly held: HeldConnection;
  readonly protocol: TwoPhaseCommit;
  state: 'open' | 'prepared' | 'done';
}

export interface AtomicCommitOptions {
  gtrid: string;
  log: DecisionLog;
  /** performance.now() milliseconds: no decision to commit after it. */
  deadline: number;
  isolation?: IsolationLevel;
  priority: QueryPriority;
  /** Bound of each statement after the decision (commits must finish, whatever the deadline). */
  settleTimeoutMs: number;
  onStep?: (event: TwoPhaseEvent) => void;
}

export class AtomicCommit {
  private readonly joined = new Map<string, Promise<Participant>>();
  private readonly participants: Participant[] = [];

  constructor(private readonly options: AtomicCommitOptions) {}

  get gtrid(): string {
    return this.options.gtrid;
  }

  /** The shard's participant, opened on first use. */
  join(shard: string, db: Knex, protocol: TwoPhaseCommit): Promise<Participant> {
    let joining = this.joined.get(shard);
    if (!joining) {
      joining = this.open(shard, db, protocol);
      this.joined.set(shard, joining);
    }
    return joining;
  }

  async commit(): Promise<void> {
    // A participant still opening when the function returned would be left out: wait for it.
    await Promise.allSettled([...this.joined.values()]);
    const { participants } = this;
    if (participants.length === 0) return;
    if (participants.length === 1) {
      const [only] = participants as [Participant];
      await this.finish(only, () => only.protocol.commitOnePhase(only.held, only.gid));
      only.state = 'done';
      this.report('finished');
      return;
    }
    await this.prepareAll();
    if (performance.now() >= this.options.deadline) {
      await this.rollback();
      throw new TransactionAbortedError(this.gtrid, 'its deadline passed before the decision', { retryable: true });
    }
    const decision = await this.decide();
    if (decision === 'abort') {
      await this.rollback();
      throw new TransactionAbortedError(this.gtrid, 'recovery decided to roll it back first (the coordinator was late)', { retryable: true });
    }
    this.report('decided');
    await this.unbounded(() =>
      Promise.allSettled(
        participants.map(async (participant) => {
          await this.finish(participant, () => participant.protocol.commitPrepared(participant.held, participant.gid));
          participant.state = 'done';
          this.report('committed', participant.shard);
        }),
      ),
    );
    // A participant left prepared keeps the decision: recovery commits it later.
    if (participants.every((participant) => participant.state === 'done')) {
      await this.unbounded(() => this.options.log.forget([this.gtrid])).catch(() => undefined);
    }
    this.report('finished');
  }

  /** Rolls back every participant (open or prepared); one unreachable now is rolled back by recovery. */
  async rollback(): Promise<void> {
    await Promise.allSettled([...this.joined.values()]);
    await Promise.allSettled(
      this.participants.map(async (participant) => {
        if (participant.state === 'open') await this.finish(participant, () => participant.protocol.rollbackOpen(participant.held, participant.gid));
        else if (participant.state === 'prepared') await this.finish(participant, () => this.unbounded(() => participant.protocol.rollbackPrepared(participant.held, participant.gid)));
        participant.state = 'done';
      }),
    );
    this.report('rolled-back');
  }

  private async open(shard: string, db: Knex, protocol: TwoPhaseCommit): Promise<Participant> {
    const held = await holdConnection(db);
    const participant: Participant = { shard, gid: participantId(this.gtrid, this.participants.length), held, protocol, state: 'open' };
    this.participants.push(participant);
    try {
      await protocol.begin(held, participant.gid, this.options.isolation);
    } catch (error) {
      participant.state = 'done';
      await held.discard();
      throw error;
    }
    return participant;
  }

  private async prepareAll(): Promise<void> {
    this.report('preparing');
    const outcomes = await Promise.allSettled(
      this.participants.map(async (participant) => {
        await participant.protocol.prepare(participant.held, participant.gid);
        participant.state = 'prepared';
        this.report('prepared', participant.shard);
      }),
    );
    const failed = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    if (failed < 0) return;
    await this.rollback();
    const reason = (outcomes[failed] as PromiseRejectedResult).reason;
    const shard = this.participants[failed]!.shard;
    throw new TransactionAbortedError(this.gtrid, `shard ${shard} could not prepare`, {
      cause: reason,
      shard,
      retryable: (reason as { retryable?: boolean })?.retryable === true,
    });
  }

  /** The decision that stands: ours (commit), or an abort recovery recorded first. */
  private async decide(): Promise<'commit' | 'abort'> {
    const { log } = this.options;
    const shards = this.participants.map((participant) => participant.shard);
    try {
      return await log.decide(this.gtrid, 'commit', shards);
    } catch (error) {
      // Whether the row was written is unknown: read it, or settle on abort if it is absent.
      try {
        return await this.unbounded(async () => (await log.get(this.gtrid))?.decision ?? (await log.decide(this.gtrid, 'abort', shards)));
      } catch {
        throw new TransactionInDoubtError(this.gtrid, error);
      }
    }
  }

  /**
   * Ends a participant's session: its connection goes back to the pool, or, if the last step
   * failed, is closed (a MySQL session would still hold the prepared branch; the server keeps it
   * prepared for recovery once the session is gone).
   */
  private async finish(participant: Participant, last: () => Promise<void>): Promise<void> {
    try {
      await last();
    } catch (error) {
      await participant.held.discard();
      throw error;
    }
    await participant.held.release();
  }

  /** Work after the decision, or a rollback: bounded per statement, not by the transaction's deadline. */
  private unbounded<T>(work: () => Promise<T>): Promise<T> {
    return withScope({ priority: this.options.priority, timeoutMs: this.options.settleTimeoutMs, purpose: 'transaction' }, work);
  }

  private report(step: TwoPhaseStep, shard?: string): void {
    this.options.onStep?.({ gtrid: this.gtrid, step, participants: this.participants.length, ...(shard ? { shard } : {}) });
  }
}
