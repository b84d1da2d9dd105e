/**
 * Tables for a terminal of a given width (cli-table3, without borders): a header, a rule, one
 * line per row; numbers align right. When the table is wider than the terminal, the columns
 * marked `optional` go first (the lowest `priority` first), then the columns marked `wrap`
 * wrap their text, so that a table stays readable at 80 columns.
 *
 *   shard    users  orders
 *   -------  -----  ------
 *   shard-1   1262    3790
 */
import Table from 'cli-table3';

export type Cell = string | number | bigint | boolean | null | undefined;

export interface Column {
  header: string;
  /** May be left out when the terminal is too narrow; lower priorities go first. */
  optional?: boolean;
  priority?: number;
  /** Its text may wrap onto more lines when the terminal is too narrow. */
  wrap?: boolean;
}

const GAP = 2;
/** A wrapping column is not narrowed below this: a few words a line stay readable. */
const MIN_WRAP_WIDTH = 20;
const NO_BORDERS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: ' '.repeat(GAP),
};

export function renderTable(columns: readonly (Column | string)[], rows: readonly (readonly Cell[])[], width = Number.POSITIVE_INFINITY): string {
  const all = columns.map((column): Column => (typeof column === 'string' ? { header: column } : column));
  const text = rows.map((row) => all.map((_, index) => format(row[index])));
  const natural = all.map((column, index) => Math.max(column.header.length, ...text.map((row) => row[index]!.length)));
  const kept = keptColumns(all, natural, width);
  const widths = fitWidths(kept.map((index) => all[index]!), kept.map((index) => natural[index]!), width);
  const numeric = kept.map((index) => rows.some((row) => isNumeric(row[index])) && rows.every((row) => isNumeric(row[index]) || isBlank(row[index])));
  const table = new Table({
    chars: NO_BORDERS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
    colWidths: widths,
    colAligns: numeric.map((right) => (right ? 'right' : 'left')),
  });
  table.push(kept.map((index) => all[index]!.header));
  table.push(widths.map((columnWidth) => '-'.repeat(columnWidth)));
  for (const row of text) table.push(kept.map((index, position) => wrapText(row[index]!, widths[position]!)));
  const dropped = all.length - kept.length;
  const body = table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
  return dropped > 0 ? `${body}\n(${dropped} column${dropped === 1 ? '' : 's'} hidden to fit ${width} columns; --json shows all)` : body;
}

/** The columns that fit: optional ones are dropped, lowest priority first, while the table is too wide. */
function keptColumns(columns: readonly Column[], natural: readonly number[], width: number): number[] {
  const kept = columns.map((_, index) => index);
  const minimum = (index: number) => (columns[index]!.wrap ? Math.min(natural[index]!, Math.max(MIN_WRAP_WIDTH, columns[index]!.header.length)) : natural[index]!);
  const total = () => kept.reduce((sum, index) => sum + minimum(index), 0) + GAP * (kept.length - 1);
  const droppable = columns
    .map((column, index) => ({ column, index }))
    .filter(({ column }) => column.optional)
    .sort((a, b) => (a.column.priority ?? 0) - (b.column.priority ?? 0));
  for (const { index } of droppable) {
    if (total() <= width) break;
    kept.splice(kept.indexOf(index), 1);
  }
  return kept;
}

/** Natural widths, with the wrapping columns narrowed (widest first) until the table fits. */
function fitWidths(columns: readonly Column[], natural: readonly number[], width: number): number[] {
  const widths = [...natural];
  let excess = widths.reduce((sum, value) => sum + value, 0) + GAP * (widths.length - 1) - width;
  while (excess > 0) {
    let widest = -1;
    widths.forEach((value, index) => {
      const floor = Math.max(MIN_WRAP_WIDTH, columns[index]!.header.length);
      if (columns[index]!.wrap && value > floor && (widest < 0 || value > widths[widest]!)) widest = index;
    });
    if (widest < 0) break;
    const floor = Math.max(MIN_WRAP_WIDTH, columns[widest]!.header.length);
    const cut = Math.min(excess, widths[widest]! - floor);
    widths[widest] = widths[widest]! - cut;
    excess -= cut;
  }
  return widths;
}

/** Lines of at most `width` characters, broken between words, and inside a word longer than a line. */
function wrapText(text: string, width: number): string {
  if (text.length <= width) return text;
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    let rest = word;
    while (rest.length > 0) {
      const room = line === '' ? width : width - line.length - 1;
      if (rest.length <= room) {
        line = line === '' ? rest : `${line} ${rest}`;
        rest = '';
      } else if (line !== '' && rest.length <= width) {
        lines.push(line);
        line = '';
      } else {
        const take = Math.max(1, room);
        lines.push(line === '' ? rest.slice(0, take) : `${line} ${rest.slice(0, take)}`);
        rest = rest.slice(take);
        line = '';
      }
    }
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

function format(cell: Cell): string {
  if (cell === null || cell === undefined) return '';
  return String(cell);
}

function isBlank(cell: Cell): boolean {
  return cell === null || cell === undefined || cell === '';
}

function isNumeric(cell: Cell): boolean {
  return typeof cell === 'number' || typeof cell === 'bigint';
}
