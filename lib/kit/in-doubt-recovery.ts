/**
 * A kit's part in settling atomic transactions left in doubt (transactions/recover-prepared.ts):
 * once when the kit starts, then every `transactions.recoveryIntervalMs`, as background work;
 * and on demand (`kit.recoverTransactions()`, `shardkit tx recover`, `shardkit tx status`).
 * Several kits may sweep at once: each step is safe to repeat.
 *
 * A transaction recovery commits after its coordinator gave up (past the coordinator's
 * deadline) wrote rows whose cached reads the coordinator had already ended, and a read may
 * have cached the older rows since: every cached entry is ended after such a commit (the
 * decision log does not say which tables or keys the transaction wrote). One committed before
 * that deadline is the coordinator's to end (it does after it commits, or its process died
 * within the deadline, while Redis still refuses fills of what it was writing).
 */
import { withScope } from '../access/call-scope.js';
import type { ResolvedConfig } from '../config/config-types.js';
import type { Topology } from '../topology/topology.js';
import type { DecisionLog } from '../transactions/decision-log.js';
import { type RecoveryReport, recoverPrepared } from '../transactions/recover-prepared.js';

export interface RecoverOptions {
  /** Past its deadline, how long a transaction without a decision is left to its coordinator (default `transactions.inDoubtGraceMs`). */
  graceMs?: number;
  /** Only report (what `shardkit tx status` shows). */
  dryRun?: boolean;
}

export interface KitRecoveryReport extends RecoveryReport {
  /** Why the cached entries could not all be ended after recovery committed (the shared level did not answer). */
  cacheFlushError?: string;
}

export class InDoubtRecovery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly topology: Topology,
    private readonly log: DecisionLog,
    private readonly config: ResolvedConfig,
    private readonly onSweep: (report: KitRecoveryReport) => void,
    /** Ends every cached entry, here and in the shared level. */
    private readonly flushCache: () => Promise<void>,
  ) {}

  /** Sweeps now and then periodically, if some shard has prepared transactions at all. */
  start(): void {
    if (!this.topology.shards.some((shard) => shard.primary.dialect.twoPhase)) return;
    this.schedule(0);
  }

  recover(options: RecoverOptions = {}): Promise<KitRecoveryReport> {
    const run = withScope({ priority: 'background', purpose: 'maintenance' }, async (): Promise<KitRecoveryReport> => {
      const report = await recoverPrepared(this.topology, this.log, { graceMs: options.graceMs ?? this.config.transactions.inDoubtGraceMs, ...(options.dryRun ? { dryRun: true } : {}) });
      const now = Date.now();
      if (options.dryRun || !report.committed.some((participant) => participant.deadlineMs <= now)) return report;
      try {
        await this.flushCache();
        return report;
      } catch (error) {
        return { ...report, cacheFlushError: error instanceof Error ? error.message : String(error) };
      }
    });
    this.running = run.catch(() => undefined);
    return run;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.recover()
        .then(this.onSweep, () => undefined)
        .finally(() => {
          const interval = this.config.transactions.recoveryIntervalMs;
          if (interval > 0) this.schedule(interval);
        });
    }, delayMs);
    this.timer.unref();
  }
}
