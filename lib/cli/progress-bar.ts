/**
 * Progress for long CLI work: `label [#######-------] 48% 12,000/25,000 rows  8,100 rows/s  ETA 2s`.
 * On a terminal it redraws one line; otherwise (CI logs) it prints at most one line every 2 s.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastPrinted = 0;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    /** What is counted: `12,000/25,000 rows  8,100 rows/s`. */
    private readonly unit = 'rows',
  ) {}

  update(done: number, total: number, note = ''): void {
    const now = Date.now();
    // A log gets no line before there is progress to report (totals may still be arriving).
    if (!this.stream.isTTY && (done === 0 || now - this.lastPrinted < 2000) && done < total) return;
    this.lastPrinted = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = done / seconds;
    const share = total > 0 ? Math.min(1, done / total) : 1;
    const width = 24;
    const filled = Math.round(share * width);
    const eta = rate > 0 && total > done ? `ETA ${formatSeconds((total - done) / rate)}` : '';
    const line = `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.round(share * 100)}% ${done.toLocaleString('en')}/${total.toLocaleString('en')} ${this.unit}  ${Math.round(rate).toLocaleString('en')} ${this.unit}/s  ${eta} ${note}`.trimEnd();
    this.stream.write(this.stream.isTTY ? `\r${line.padEnd(110)}` : `${line}\n`);
  }

  finish(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.ceil(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}
