/**
 * Progress for long CLI work (cli-progress), fitted to the terminal's width:
 *
 *   backfill users_v2 [########------] 58% 12,000/20,600 rows 8,100 rows/s ETA 2s
 *
 * The count is true: 100% only once the work says it is done (a total that grows while rows are
 * inserted is raised, never passed), and the rate and ETA count only what this run did (a resumed
 * backfill starts from its checkpoint, not from zero). On a terminal the line redraws in place;
 * elsewhere (CI logs) a line is printed every 2 s and one at the end.
 */
import { type GenericBar, MultiBar, type Options, SingleBar } from 'cli-progress';

export interface ProgressOptions {
  /** What is counted: rows, keys. */
  unit: string;
  stream?: NodeJS.WriteStream;
  /** Columns to fit; default the terminal's. */
  width?: number;
  /** Several bars advancing at once (shards in parallel) share one group's lines. */
  group?: ProgressGroup;
}

interface Payload {
  label: string;
  note: string;
  done: boolean;
  first: number;
}

function barOptions(stream: NodeJS.WriteStream): Options {
  return { stream, noTTYOutput: true, notTTYSchedule: 2000, hideCursor: false, linewrap: false, fps: 5 };
}

/** Lines for bars that advance together: each keeps its own count, rate and ETA. */
export class ProgressGroup {
  readonly stream: NodeJS.WriteStream;
  private readonly multi: MultiBar;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.stream = stream;
    this.multi = new MultiBar(barOptions(stream));
  }

  open(total: number, value: number, payload: Payload, format: NonNullable<Options['format']>): GenericBar {
    return this.multi.create(total, value, payload, { format });
  }

  stop(): void {
    this.multi.stop();
  }
}

export class Progress {
  private bar: GenericBar | undefined;
  private readonly stream: NodeJS.WriteStream;
  private readonly unit: string;
  private readonly width: number;
  private readonly group: ProgressGroup | undefined;
  private startedAt = 0;
  private first = 0;
  private total = 0;

  constructor(
    private readonly label: string,
    options: ProgressOptions,
  ) {
    this.group = options.group;
    this.stream = options.stream ?? options.group?.stream ?? process.stderr;
    this.unit = options.unit;
    this.width = options.width ?? (this.stream.isTTY ? this.stream.columns : Number(process.env.COLUMNS) || 100);
  }

  /** Sets the count; `total` may grow, `done` marks the end (then 100%). */
  update(value: number, total: number, options: { done?: boolean; note?: string } = {}): void {
    this.total = Math.max(this.total, total, value);
    const payload: Payload = { label: this.label, note: options.note ?? '', done: options.done === true, first: this.first };
    if (!this.bar) {
      this.startedAt = Date.now();
      this.first = value;
      const format: NonNullable<Options['format']> = (_options, params, state) => this.line(params.value, params.total, state as Payload);
      const first = { ...payload, first: value };
      if (this.group) this.bar = this.group.open(this.total, value, first, format);
      else {
        const bar = new SingleBar({ ...barOptions(this.stream), format });
        bar.start(this.total, value, first);
        this.bar = bar;
      }
      return;
    }
    this.bar.setTotal(this.total);
    this.bar.update(value, payload);
  }

  stop(): void {
    this.bar?.stop();
  }

  private line(value: number, total: number, payload: Payload): string {
    return progressLine({ ...payload, value, total, unit: this.unit, width: this.width, seconds: (Date.now() - this.startedAt) / 1000 });
  }
}

export interface ProgressState {
  label: string;
  note: string;
  /** The work says it is finished. */
  done: boolean;
  /** The count when this run began (a resumed backfill's checkpoint). */
  first: number;
  value: number;
  total: number;
  unit: string;
  width: number;
  /** Seconds since this run began. */
  seconds: number;
}

/** One progress line of at most `width - 1` characters (pure, for tests). */
export function progressLine(state: ProgressState): string {
  const { value, total, done } = state;
  const percent = done ? 100 : total > 0 ? Math.min(99, Math.floor((value / total) * 100)) : 0;
  const rate = Math.round((value - state.first) / Math.max(0.001, state.seconds));
  // The ETA follows the rate shown (this run's), so that the two always agree.
  const eta = done ? 'done' : rate > 0 ? `ETA ${formatSeconds(Math.max(0, total - value) / rate)}` : 'ETA -';
  const stats = `${percent}% ${value.toLocaleString('en')}/${total.toLocaleString('en')} ${state.unit} ${rate.toLocaleString('en')} ${state.unit}/s ${eta}${state.note ? ` ${state.note}` : ''}`;
  // The label gives way first, then the bar, so that counts, rate and ETA always show.
  const room = state.width - 1;
  const barWidth = Math.max(0, Math.min(30, room - stats.length - state.label.length - 4));
  const label = truncateText(state.label, Math.max(8, room - stats.length - barWidth - 4));
  // Rounded down like the percentage: the bar is full only at 100%.
  const bar = barWidth >= 5 ? ` [${'#'.repeat(Math.floor((percent / 100) * barWidth)).padEnd(barWidth, '-')}]` : '';
  return truncateText(`${label}${bar} ${stats}`, room);
}

function truncateText(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

export function formatSeconds(seconds: number): string {
  const whole = Math.ceil(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${whole % 60}s`;
  return `${Math.floor(whole / 3600)}h${Math.floor((whole % 3600) / 60)}m`;
}
