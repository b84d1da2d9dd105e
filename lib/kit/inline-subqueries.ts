/**
 * Evaluates the subqueries a plan marks for inlining (planner/plan-subqueries.ts) and writes
 * their answers into a copy of the query: `col IN (subquery)` becomes `col IN (values)`, an
 * EXISTS becomes true or false. The subquery runs through the kit first, on every shard it
 * needs, so its answer is the one a single database gives; the values are bounded, because
 * they travel in the outer statement.
 */
import { MergeLimitError, UnsupportedQueryError } from '../errors.js';
import { type AnyQueryBuilder, copyBuilder, internalsOf, type Statement } from '../knex/builder-internals.js';
import type { InlinedSubquery } from '../planner/plan-subqueries.js';
import { builderOf } from '../planner/query-shape.js';

/** Runs a subquery through the kit: its rows. */
export type SubqueryRunner = (subquery: AnyQueryBuilder) => Promise<Record<string, unknown>[]>;

export async function inlineSubqueries(
  builder: AnyQueryBuilder,
  inlined: readonly InlinedSubquery[],
  run: SubqueryRunner,
  maxValues: number,
): Promise<{ query: AnyQueryBuilder }> {
  const copy = copyBuilder(builder);
  const internals = internalsOf(copy);
  const statements = [...internals._statements];
  for (const { statement: index, kind } of inlined) {
    const statement = statements[index]!;
    const subquery = copyBuilder(builderOf(statement.value, internals.client));
    const limit = internalsOf(subquery)._single.limit;
    const bound = kind === 'exists' ? 1 : maxValues + 1;
    if (limit === undefined || limit > bound) (subquery as unknown as { limit(n: number): void }).limit(bound);
    const rows = await run(subquery);
    statements[index] = kind === 'exists' ? existsAnswer(statement, rows.length > 0, internals.client) : inList(statement, rows, maxValues);
  }
  internals._statements = statements;
  // Wrapped: a builder is a thenable, which an async function's promise would run.
  return { query: copy };
}

function inList(statement: Statement, rows: readonly Record<string, unknown>[], maxValues: number): Statement {
  if (rows.length > maxValues) throw new MergeLimitError(maxValues, `an IN subquery returned more than ${maxValues} values to inline (scatter.maxInlineValues)`);
  if (rows.some((row) => Object.keys(row).length !== 1)) throw new UnsupportedQueryError('in subquery', 'an IN subquery must select exactly one column');
  return { ...statement, value: rows.map((row) => Object.values(row)[0]) };
}

function existsAnswer(statement: Statement, exists: boolean, client: AnyQueryBuilder['client']): Statement {
  const holds = exists !== (statement.not === true);
  return { grouping: 'where', type: 'whereRaw', value: client.raw(holds ? '1 = 1' : '1 = 0'), bool: statement.bool ?? 'and', not: false };
}
