/**
 * The SQL expressions the merge of a multi-shard select reasons about: what a raw select item,
 * HAVING condition or ORDER BY item says, as plain data. parse-expression.ts builds them from
 * SQL text (a real parser for the dialect), print-expression.ts writes them back as SQL for a
 * shard, and the engine evaluates them over merged groups (engine/merge/evaluate-expression.ts).
 *
 * After planning, the aggregates and grouped expressions inside an expression are replaced by
 * `ref` nodes naming the merged-row value that carries them.
 */
import type { AggregateFunction } from './merge-spec.js';

export type ComparisonOperator = '=' | '<>' | '<' | '<=' | '>' | '>=';
export type ArithmeticOperator = '+' | '-' | '*' | '/' | '%';

/** What a merged-row value holds, to know its SQL type. */
export type RefSource =
  | { kind: 'group'; expression: Expr }
  | { kind: 'aggregate'; fn: AggregateFunction; distinct: boolean; argument: Expr | '*' };

export type Expr =
  /** A literal as written: numbers keep their text ('2.50'), so that their scale is known. */
  | { kind: 'literal'; value: string | boolean | null; type: 'number' | 'text' | 'boolean' | 'null' }
  /** A value bound by knex (`?`), as the caller passed it. */
  | { kind: 'value'; value: unknown }
  | { kind: 'column'; table: string | undefined; name: string }
  | { kind: 'aggregate'; fn: AggregateFunction; distinct: boolean; argument: Expr | '*' }
  | { kind: 'ref'; key: string; source: RefSource }
  | { kind: 'negate'; operand: Expr }
  | { kind: 'not'; operand: Expr }
  | { kind: 'arithmetic'; op: ArithmeticOperator; left: Expr; right: Expr }
  | { kind: 'compare'; op: ComparisonOperator; left: Expr; right: Expr }
  | { kind: 'logic'; op: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'isNull'; operand: Expr; negated: boolean }
  | { kind: 'in'; operand: Expr; list: Expr[]; negated: boolean }
  | { kind: 'between'; operand: Expr; low: Expr; high: Expr; negated: boolean }
  | { kind: 'call'; name: string; args: Expr[] }
  /** CAST(operand AS type), the type as written (`text`, `char`, `numeric(10,2)`). */
  | { kind: 'cast'; operand: Expr; type: string };

/** Every node of `expr`, depth first. */
export function* nodesOf(expr: Expr): Generator<Expr> {
  yield expr;
  for (const child of childrenOf(expr)) yield* nodesOf(child);
}

export function childrenOf(expr: Expr): Expr[] {
  switch (expr.kind) {
    case 'negate':
    case 'not':
    case 'isNull':
    case 'cast':
      return [expr.operand];
    case 'arithmetic':
    case 'compare':
    case 'logic':
      return [expr.left, expr.right];
    case 'in':
      return [expr.operand, ...expr.list];
    case 'between':
      return [expr.operand, expr.low, expr.high];
    case 'call':
      return expr.args;
    case 'aggregate':
      return expr.argument === '*' ? [] : [expr.argument];
    default:
      return [];
  }
}

/** The expression with every node `replace` maps to something else replaced, outermost first. */
export function rewrite(expr: Expr, replace: (node: Expr) => Expr | undefined): Expr {
  const replaced = replace(expr);
  if (replaced) return replaced;
  const again = (child: Expr) => rewrite(child, replace);
  switch (expr.kind) {
    case 'negate':
    case 'not':
      return { ...expr, operand: again(expr.operand) };
    case 'isNull':
    case 'cast':
      return { ...expr, operand: again(expr.operand) };
    case 'arithmetic':
    case 'compare':
    case 'logic':
      return { ...expr, left: again(expr.left), right: again(expr.right) } as Expr;
    case 'in':
      return { ...expr, operand: again(expr.operand), list: expr.list.map(again) };
    case 'between':
      return { ...expr, operand: again(expr.operand), low: again(expr.low), high: again(expr.high) };
    case 'call':
      return { ...expr, args: expr.args.map(again) };
    case 'aggregate':
      return expr.argument === '*' ? expr : { ...expr, argument: again(expr.argument) };
    default:
      return expr;
  }
}

export function containsAggregate(expr: Expr): boolean {
  for (const node of nodesOf(expr)) if (node.kind === 'aggregate') return true;
  return false;
}

/** A key equal for expressions written alike up to spacing, case of keywords and quoting. */
export function expressionKey(expr: Expr): string {
  return JSON.stringify(expr, (_key, value) => (typeof value === 'bigint' ? `${value}n` : value));
}
