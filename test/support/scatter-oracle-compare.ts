/**
 * Judging a scatter-gather answer against the oracle's (one unsharded table), and counting.
 *
 *   equal    same result as the oracle; or both fail, the kit with a ShardKitError (PostgreSQL
 *            itself rejects HAVING on a select alias, say)
 *   refused  the oracle answers and the kit refuses with a typed UNSUPPORTED_QUERY or MERGE_LIMIT
 *   wrong    anything else: another result, an untyped error, another error code (SCATTER_FAILED,
 *            QUERY_FAILED, ...), or an answer where the oracle fails
 */
import { ShardKitError } from '../../lib/index.js';
import type { GeneratedQuery } from './scatter-queries.js';

/** The error codes that mean "the kit knows it cannot answer this correctly". */
export const REFUSAL_CODES: ReadonlySet<string> = new Set(['UNSUPPORTED_QUERY', 'MERGE_LIMIT']);

export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
export type Verdict = 'equal' | 'refused' | 'wrong';

/** Runs a query, catching both a builder that throws while being built and one that rejects. */
export async function attempt(run: () => PromiseLike<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Equal as results: same types and values; floats (sums and averages of DOUBLE) within 1e-9. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b)) return a === b;
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((value, index) => sameValue(value, b[index]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => sameValue((a as never)[key], (b as never)[key]));
  }
  return a === b;
}

/** Rows of an unordered result, in a canonical order. */
export function canonical(result: unknown): unknown {
  if (!Array.isArray(result)) return result;
  return [...result].sort((x, y) => {
    const a = JSON.stringify(x);
    const b = JSON.stringify(y);
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function errorCode(error: unknown): string | undefined {
  return error instanceof ShardKitError ? error.code : undefined;
}

export function classify(expected: Outcome, actual: Outcome, ordered: boolean): Verdict {
  if (!expected.ok) return !actual.ok && actual.error instanceof ShardKitError ? 'equal' : 'wrong';
  if (!actual.ok) return REFUSAL_CODES.has(errorCode(actual.error) ?? '') ? 'refused' : 'wrong';
  const [left, right] = ordered ? [actual.value, expected.value] : [canonical(actual.value), canonical(expected.value)];
  return sameValue(left, right) ? 'equal' : 'wrong';
}

/** An outcome in a few hundred characters: the rows as JSON, or the error's class, code and message. */
export function excerpt(outcome: Outcome, ordered: boolean, max = 400): string {
  if (outcome.ok) return (JSON.stringify(ordered ? outcome.value : canonical(outcome.value)) ?? 'undefined').slice(0, max);
  const error = outcome.error;
  if (!(error instanceof Error)) return `throws ${String(error)}`.slice(0, max);
  const code = errorCode(error);
  return `${error.name}${code ? ` ${code}` : ' (untyped)'}: ${error.message}`.replace(/\s+/g, ' ').slice(0, max);
}

interface Wrong {
  index: number;
  query: GeneratedQuery;
  sql: string;
  sharded: string;
  oracle: string;
}

/** The counts of one run, by verdict and by construct. */
export class Tally {
  readonly counts: Record<Verdict, number> = { equal: 0, refused: 0, wrong: 0 };
  readonly refusedBy = new Map<string, number>();
  readonly wrongBy = new Map<string, number>();
  readonly seenBy = new Map<string, number>();
  /** Queries the oracle itself rejected (and the kit too, with a typed error: counted equal). */
  readonly oracleFailedBy = new Map<string, number>();
  readonly wrongs: Wrong[] = [];
  /** Oracle failures on queries not marked `oracleMayFail`: a broken generator or setup, not a kit bug. */
  readonly unexpectedOracleFailures: string[] = [];

  get total(): number {
    return this.counts.equal + this.counts.refused + this.counts.wrong;
  }

  record(index: number, query: GeneratedQuery, expected: Outcome, verdict: Verdict, detail: () => Omit<Wrong, 'index' | 'query'>): void {
    this.counts[verdict]++;
    bump(this.seenBy, query.construct);
    if (!expected.ok) {
      bump(this.oracleFailedBy, query.construct);
      if (!query.oracleMayFail) this.unexpectedOracleFailures.push(`query ${index} [${query.construct}] ${query.description}: ${excerpt(expected, true, 300)}`);
    }
    if (verdict === 'refused') bump(this.refusedBy, query.construct);
    if (verdict === 'wrong') {
      bump(this.wrongBy, query.construct);
      this.wrongs.push({ index, query, ...detail() });
    }
  }

  /** The report: one line of counts, refusals and wrong answers by construct, the first `show` wrong queries. */
  report(target: string, seed: number, show: number): string[] {
    const { equal, refused, wrong } = this.counts;
    const percent = this.total ? ((100 * refused) / this.total).toFixed(1) : '0.0';
    const lines = [`      ${target}: ${this.total} queries: equal ${equal}, refused ${refused} (${percent}%), wrong ${wrong}`];
    const byConstruct = (title: string, counts: Map<string, number>) => {
      if (!counts.size) return;
      lines.push(`        ${title} by construct:`);
      for (const [construct, n] of [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
        lines.push(`          ${construct.padEnd(44)} ${String(n).padStart(4)} of ${this.seenBy.get(construct)}`);
      }
    };
    const kinds = new Map<string, number>();
    for (const [construct, n] of this.seenBy) kinds.set(construct.split(':')[0]!, (kinds.get(construct.split(':')[0]!) ?? 0) + n);
    const perKind = [...kinds].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${n}`);
    for (let start = 0; start < perKind.length; start += 6) lines.push(`        ${start === 0 ? 'queries by kind: ' : '                 '}${perKind.slice(start, start + 6).join(', ')}`);
    byConstruct('refused', this.refusedBy);
    byConstruct('wrong', this.wrongBy);
    byConstruct('oracle failed (kit must fail too)', this.oracleFailedBy);
    for (const item of this.wrongs.slice(0, show)) {
      lines.push(
        `        wrong: query ${item.index} of seed ${seed} (replay: SCATTER_SEED=${seed}) [${item.query.construct}]: ${item.query.description}`,
        `          sql:     ${item.sql}`,
        `          sharded: ${item.sharded}`,
        `          oracle:  ${item.oracle}`,
      );
    }
    if (this.wrongs.length > show) lines.push(`        ... ${this.wrongs.length - show} more wrong (SCATTER_SHOW_WRONG=<n> prints more)`);
    return lines;
  }
}

function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
