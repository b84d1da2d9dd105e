/**
 * The level the health signal asks for, with hysteresis, as a pure state machine over the
 * figures of health-window.ts:
 *
 *   up      at once, by as many levels as the thresholds say: level i+1 is due when the p99 is
 *           above thresholds[i].p99Ms or the error rate above thresholds[i].errorRate
 *   down    one level at a time, once the level was held `minHoldMs`, and only when both figures
 *           are below `recoverBelow` times the threshold of the level being left
 *
 * so a signal hovering around a threshold does not flap: with thresholds [{1000 ms, 5%}] and
 * recoverBelow 0.7, a p99 of 1100 ms enters level 1, and level 1 is left only once the p99 is
 * under 700 ms and the error rate at most 3.5%, at least minHoldMs after it was entered. A window
 * with fewer than `minSamples` calls is judged healthy (too few calls to overload anything), so
 * an idle kit steps down too.
 */
import type { DegradationThreshold } from '../config/config-types.js';
import type { HealthFigures } from './health-window.js';

export interface LevelRules {
  thresholds: readonly DegradationThreshold[];
  recoverBelow: number;
  minHoldMs: number;
  minSamples: number;
}

/** A move of the level, with the figures that caused it. */
export interface LevelChange {
  from: number;
  to: number;
  figures: HealthFigures;
}

export class LevelController {
  private current = 0;
  private since: number;

  constructor(
    private readonly rules: LevelRules,
    now: number,
  ) {
    this.since = now;
  }

  get level(): number {
    return this.current;
  }

  /** When the level was entered (clock ms). */
  get enteredAt(): number {
    return this.since;
  }

  /** The earliest time (clock ms) the level could step down, for a caller's retry. */
  earliestStepDown(): number {
    return this.since + this.rules.minHoldMs;
  }

  /** Judges the window's figures at `now`: the change made, if any. */
  judge(figures: HealthFigures, now: number): LevelChange | undefined {
    const counted = figures.samples >= this.rules.minSamples;
    const due = counted ? dueLevel(this.rules.thresholds, figures) : 0;
    const from = this.current;
    if (due > from) return this.move(due, figures, now);
    if (from === 0 || now - this.since < this.rules.minHoldMs) return undefined;
    const left = this.rules.thresholds[from - 1]!;
    const recovered = !counted || (figures.p99Ms < left.p99Ms * this.rules.recoverBelow && figures.errorRate <= left.errorRate * this.rules.recoverBelow);
    return recovered ? this.move(from - 1, figures, now) : undefined;
  }

  private move(to: number, figures: HealthFigures, now: number): LevelChange {
    const change = { from: this.current, to, figures };
    this.current = to;
    this.since = now;
    return change;
  }
}

/** The highest level whose threshold the figures cross (0: none). */
export function dueLevel(thresholds: readonly DegradationThreshold[], figures: HealthFigures): number {
  let due = 0;
  thresholds.forEach((threshold, index) => {
    if (figures.p99Ms > threshold.p99Ms || figures.errorRate > threshold.errorRate) due = index + 1;
  });
  return due;
}
