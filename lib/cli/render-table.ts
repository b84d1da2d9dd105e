/**
 * A plain-text table for terminals: a header, a rule, one line per row; numbers align right.
 *
 *   shard    users  orders
 *   -------  -----  ------
 *   shard-1   1262    3790
 */
export type Cell = string | number | bigint | boolean | null | undefined;

export function renderTable(header: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => header.map((_, column) => format(row[column])));
  const numeric = header.map(
    (_, column) => rows.some((row) => isNumeric(row[column])) && rows.every((row) => isNumeric(row[column]) || isBlank(row[column])),
  );
  const widths = header.map((title, column) => Math.max(title.length, ...text.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...text.map(line)].join('\n');
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
