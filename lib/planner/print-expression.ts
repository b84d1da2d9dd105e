/**
 * Writes an Expr back as SQL for a shard to evaluate: a knex raw fragment in which columns are
 * `??` identifier bindings (quoted by knex for the dialect) and values are `?` bindings, so
 * that nothing read from the caller's SQL is pasted into a statement unquoted. Every compound
 * expression is parenthesised, which keeps the caller's precedence whatever it was.
 */
import type { Expr } from './expression.js';

export interface PrintedSql {
  sql: string;
  bindings: unknown[];
}

export function printExpression(expr: Expr): PrintedSql {
  const bindings: unknown[] = [];
  const print = (node: Expr): string => {
    switch (node.kind) {
      case 'literal':
        if (node.type === 'text') {
          bindings.push(node.value);
          return '?';
        }
        return node.value === null ? 'null' : String(node.value);
      case 'value':
        bindings.push(node.value);
        return '?';
      case 'column':
        bindings.push(node.table === undefined ? node.name : `${node.table}.${node.name}`);
        return '??';
      case 'aggregate':
        return `${node.fn}(${node.distinct ? 'distinct ' : ''}${node.argument === '*' ? '*' : print(node.argument)})`;
      case 'ref':
        throw new TypeError('a merged-row reference has no SQL');
      case 'negate':
        return `(-${print(node.operand)})`;
      case 'not':
        return `(not ${print(node.operand)})`;
      case 'arithmetic':
      case 'compare':
        return `(${print(node.left)} ${node.op} ${print(node.right)})`;
      case 'logic':
        return `(${print(node.left)} ${node.op} ${print(node.right)})`;
      case 'isNull':
        return `(${print(node.operand)} is ${node.negated ? 'not ' : ''}null)`;
      case 'in':
        return `(${print(node.operand)} ${node.negated ? 'not ' : ''}in (${node.list.map(print).join(', ')}))`;
      case 'between':
        return `(${print(node.operand)} ${node.negated ? 'not ' : ''}between ${print(node.low)} and ${print(node.high)})`;
      case 'call':
        return `${node.name}(${node.args.map(print).join(', ')})`;
      case 'cast':
        return `cast(${print(node.operand)} as ${node.type})`;
    }
  };
  const sql = print(expr);
  return { sql, bindings };
}
