/**
 * The degradation section resolved: defaults filled in, and the effects of every level laid
 * out, each level being the one below it plus its own settings (the user's, or where the user
 * is silent, the defaults'):
 *
 *   level 0   nothing degraded
 *   level 1   + shedBackground, pauseBackfill
 *   level 2   + replicaMaxLagMs 30000, serveStaleMs 60000
 *   level 3   + scatter 'critical-only'
 *
 * so `effects: { 1: { shedBackground: false } }` keeps background work at every level, and a
 * fourth threshold adds a level 4 that does what level 3 does unless `effects[4]` says more.
 */
import type { ConfigIssue } from '../errors.js';
import type { ParsedConfig } from './config-schema.js';
import type { DegradationEffects, DegradationThreshold, LevelEffects, ResolvedDegradation } from './config-types.js';

const DEFAULT_THRESHOLDS: DegradationThreshold[] = [
  { p99Ms: 1000, errorRate: 0.05 },
  { p99Ms: 2500, errorRate: 0.2 },
  { p99Ms: 5000, errorRate: 0.5 },
];

const NONE: LevelEffects = { shedBackground: false, pauseBackfill: false, replicaMaxLagMs: 0, serveStaleMs: 0, scatter: 'all' };

/** What each default level adds to the one below. */
const DEFAULT_STEPS: Record<number, DegradationEffects> = {
  1: { shedBackground: true, pauseBackfill: true },
  2: { replicaMaxLagMs: 30_000, serveStaleMs: 60_000 },
  3: { scatter: 'critical-only' },
};

type ParsedDegradation = NonNullable<ParsedConfig['degradation']>;

export function resolveDegradation(parsed: ParsedDegradation | undefined): ResolvedDegradation {
  const thresholds = parsed?.thresholds ?? DEFAULT_THRESHOLDS;
  const levels: LevelEffects[] = [NONE];
  for (let level = 1; level <= thresholds.length; level++) {
    levels.push({ ...levels[level - 1]!, ...DEFAULT_STEPS[level], ...defined(parsed?.effects?.[String(level)]) });
  }
  return {
    // Opt-in: a kit that refuses scatters or background work by itself must be asked to.
    enabled: parsed?.enabled ?? false,
    windowMs: parsed?.windowMs ?? 10_000,
    evaluateEveryMs: parsed?.evaluateEveryMs ?? 1000,
    minSamples: parsed?.minSamples ?? 20,
    thresholds: thresholds.map((threshold) => ({ ...threshold })),
    recoverBelow: parsed?.recoverBelow ?? 0.7,
    minHoldMs: parsed?.minHoldMs ?? 5000,
    levels,
  };
}

/** Rules relating the section's fields, each issue with the path of the field to fix. */
export function degradationIssues(parsed: ParsedDegradation | undefined): ConfigIssue[] {
  if (!parsed) return [];
  const issues: ConfigIssue[] = [];
  const levels = (parsed.thresholds ?? DEFAULT_THRESHOLDS).length;
  (parsed.thresholds ?? []).forEach((threshold, index, all) => {
    const below = all[index - 1];
    if (!below) return;
    for (const field of ['p99Ms', 'errorRate'] as const) {
      if (threshold[field] < below[field]) {
        issues.push({ path: `degradation.thresholds[${index}].${field}`, message: `must not be below level ${index}'s (${below[field]}): a higher level needs a worse signal` });
      }
    }
  });
  for (const level of Object.keys(parsed.effects ?? {})) {
    if (Number(level) > levels) issues.push({ path: `degradation.effects.${level}`, message: `there is no level ${level}: thresholds define levels 1 to ${levels}` });
  }
  const windowMs = parsed.windowMs ?? 10_000;
  if ((parsed.evaluateEveryMs ?? 1000) > windowMs) issues.push({ path: 'degradation.evaluateEveryMs', message: `must not be longer than the window (${windowMs} ms)` });
  return issues;
}

/** The fields a level sets (zod leaves absent optional fields out, but an explicit undefined must not erase the level below's). */
function defined(effects: DegradationEffects | undefined): DegradationEffects {
  return Object.fromEntries(Object.entries(effects ?? {}).filter(([, value]) => value !== undefined));
}
