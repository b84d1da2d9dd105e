/**
 * The runbook of an online migration (or a rebalance's phases) as one loop, used by the CLI,
 * the demo and the tests: from wherever the migration is, do the phase's work and advance, up
 * to the phase asked for.
 *
 *   pending      start (begins dual writing)
 *   dual_write   advance once every instance dual-writes
 *   backfill     copy the rows (resumes from the checkpoints), then advance
 *   verify       compare and repair, then advance
 *   shadow_read  advance once reads compared equal (the gate counts the mismatches)
 *   cutover      advance to cleanup only when asked to go that far
 *
 * Every step is the runner's own, with its gates and locks; a gate that refuses stops the loop
 * with its MigrationGateError. Rerunning resumes.
 */
import type { BackfillOptions } from './backfill.js';
import type { MigrationStatus, OnlineMigrationRunner } from './migration-runner.js';
import { isAtLeast, type Phase } from './phases.js';
import type { VerifyOptions } from './verify.js';

export interface DriveOptions {
  /** Stop once this phase is reached. Default 'cutover' (cleanup retires the old data: ask for it). */
  until?: Phase;
  backfill?: BackfillOptions & { maxLagMs?: number };
  verify?: VerifyOptions;
  /** How long each advance waits for every instance to follow. Default 10000. */
  waitForAcksMs?: number;
  /** Told when the loop reaches a phase, before its work. */
  onPhase?: (phase: Phase) => void;
  /** Told after each verify. */
  onVerify?: (report: { rowsChecked: number; differences: number; repaired: number; unrepaired: number }) => void;
}

export async function drive(runner: OnlineMigrationRunner, options: DriveOptions = {}): Promise<MigrationStatus> {
  const until = options.until ?? 'cutover';
  const waitForAcksMs = options.waitForAcksMs ?? 10_000;
  for (;;) {
    const status = await runner.status();
    if (isAtLeast(status.phase, until)) return status;
    options.onPhase?.(status.phase);
    switch (status.phase) {
      case 'pending':
        await runner.start();
        continue;
      case 'backfill':
        await runner.backfill(options.backfill);
        break;
      case 'verify': {
        // Not `onVerify?.(await runner.verify())`: an absent listener would skip the verify itself.
        const report = await runner.verify(options.verify);
        options.onVerify?.(report);
        break;
      }
      default:
        break;
    }
    await runner.advance({ waitForAcksMs });
  }
}
