/**
 * The phases of an online migration, in order, and what each means for the application:
 *
 *   phase        writes to source        writes to target       reads compared
 *   pending      as usual                refused                no
 *   dual_write   + synced to target      refused                no
 *   backfill     + synced to target      refused                no     (rows copied in batches)
 *   verify       + synced to target      refused                no     (chunks compared, repaired)
 *   shadow_read  + synced to target      refused                sampled source reads
 *   cutover      + synced to target      + synced back to source no    (the application moves to the target)
 *   cleanup      refused                 as usual               no
 *
 * Every phase before cleanup rolls back to the one before it; until cleanup both tables hold
 * every write, so a rollback loses nothing.
 */
export const PHASES = ['pending', 'dual_write', 'backfill', 'verify', 'shadow_read', 'cutover', 'cleanup'] as const;
export type Phase = (typeof PHASES)[number];

export function nextPhase(phase: Phase): Phase | undefined {
  return PHASES[PHASES.indexOf(phase) + 1];
}

export function previousPhase(phase: Phase): Phase | undefined {
  if (phase === 'cleanup') return undefined;
  return PHASES[PHASES.indexOf(phase) - 1];
}

export function isAtLeast(phase: Phase, than: Phase): boolean {
  return PHASES.indexOf(phase) >= PHASES.indexOf(than);
}

/** Source writes are copied to the target from dual_write until cleanup. */
export function syncsForward(phase: Phase): boolean {
  return isAtLeast(phase, 'dual_write') && phase !== 'cleanup';
}

/** Target writes are copied back to the source during cutover. */
export function syncsBackward(phase: Phase): boolean {
  return phase === 'cutover';
}

export function targetWritable(phase: Phase): boolean {
  return isAtLeast(phase, 'cutover');
}

export function sourceWritable(phase: Phase): boolean {
  return phase !== 'cleanup';
}
