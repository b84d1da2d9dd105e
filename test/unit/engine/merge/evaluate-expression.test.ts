import { expect } from 'chai';
import { compileExpression, type EvaluationContext } from '../../../../lib/engine/merge/evaluate-expression.js';
import type { SqlType } from '../../../../lib/engine/merge/expression-types.js';
import { type Expr, rewrite } from '../../../../lib/planner/expression.js';
import { parseCondition, parseSelectItems } from '../../../../lib/planner/parse-expression.js';
import type { SqlFamily } from '../../../../lib/config/config-types.js';

const COLUMNS: Record<string, SqlType> = { score: 'int', id: 'bigint', price: 'decimal', weight: 'float', label: 'text' };

function context(family: SqlFamily, bigintsAs: 'string' | 'number' = 'string'): EvaluationContext {
  return { family, bigintsAs, columnType: (_table, name) => COLUMNS[name] ?? 'other' };
}

/** Aggregates become refs named after their SQL, as the planner would key them. */
function overAggregates(expr: Expr): Expr {
  return rewrite(expr, (node) => {
    if (node.kind !== 'aggregate') return undefined;
    const argument = node.argument === '*' ? '*' : node.argument.kind === 'column' ? node.argument.name : '?';
    return { kind: 'ref', key: `${node.fn}(${argument})`, source: { kind: 'aggregate', fn: node.fn, distinct: node.distinct, argument: node.argument } };
  });
}

function value(sql: string, row: Record<string, unknown>, family: SqlFamily = 'postgres', bigintsAs: 'string' | 'number' = 'string') {
  const [item] = parseSelectItems({ sql }, family);
  return compileExpression(overAggregates(item!.expr), context(family, bigintsAs)).evaluate(row);
}

function holds(sql: string, bindings: unknown[], row: Record<string, unknown>, family: SqlFamily = 'postgres') {
  return compileExpression(overAggregates(parseCondition({ sql, bindings }, family)), context(family)).test(row);
}

describe('expressions evaluated after the merge', () => {
  it('divides as each dialect divides: integers truncate on PostgreSQL, MySQL gives four more decimals', () => {
    const row = { 'sum(score)': '7', 'count(*)': '2' };
    expect(value('sum(score) / count(*)', row, 'postgres')).to.equal('3');
    expect(value('sum(score) / count(*)', { 'sum(score)': '7', 'count(*)': 2 }, 'mysql')).to.equal('3.5000');
    expect(value('sum(price) / count(*)', { 'sum(price)': '10.00', 'count(*)': '3' }, 'postgres')).to.equal('3.3333333333333333');
  });

  it('keeps decimal scales exactly and returns BIGINT in the driver form', () => {
    expect(value('sum(price) * 2', { 'sum(price)': '1.25' })).to.equal('2.50');
    expect(value('count(*) + 1', { 'count(*)': '41' }, 'postgres', 'string')).to.equal('42');
    expect(value('count(*) + 1', { 'count(*)': 41 }, 'postgres', 'number')).to.equal(42);
    expect(value('max(score) - min(score)', { 'max(score)': 9, 'min(score)': -3 })).to.equal(12);
  });

  it('is NULL when an operand is, and raises division by zero only where PostgreSQL does', () => {
    expect(value('sum(price) / count(*)', { 'sum(price)': null, 'count(*)': '0' })).to.equal(null);
    expect(() => value('count(*) / sum(score)', { 'count(*)': '1', 'sum(score)': '0' })).to.throw(/division by zero/);
    expect(value('count(*) / sum(score)', { 'count(*)': 1, 'sum(score)': '0' }, 'mysql')).to.equal(null);
  });

  it('uses three-valued logic in HAVING: unknown is not true, also under NOT', () => {
    expect(holds('sum(score) > ?', [1], { 'sum(score)': null })).to.equal(null);
    expect(holds('not (sum(score) > ?)', [1], { 'sum(score)': null })).to.equal(null);
    expect(holds('sum(score) is null or count(*) > ?', [5], { 'sum(score)': null, 'count(*)': '1' })).to.equal(true);
    expect(holds('count(*) > ? and sum(score) > ?', [5, 1], { 'sum(score)': null, 'count(*)': '1' })).to.equal(false);
  });

  it('compares exact values exactly, whatever form the driver gave them in', () => {
    expect(holds('avg(price) > ?', [10.3], { 'avg(price)': '10.3000000000000001' })).to.equal(true);
    expect(holds('count(*) between ? and ?', [2, 3], { 'count(*)': '3' })).to.equal(true);
    expect(holds('count(*) in (?, ?)', [1, 2], { 'count(*)': '3' })).to.equal(false);
    expect(holds('coalesce(sum(score), 0) = 0', [], { 'sum(score)': null })).to.equal(true);
  });
});
