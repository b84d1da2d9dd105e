import { expect } from 'chai';
import { parseOrderItems, parseSelectItems } from '../../../lib/planner/parse-expression.js';
import { printExpression } from '../../../lib/planner/print-expression.js';

describe('reading raw SQL for the merge', () => {
  it('reads identifier bindings (??) as the dialect quotes them, and value bindings as values', () => {
    const [item] = parseSelectItems({ sql: 'coalesce(??, ?) as ??', bindings: ['orders.amount', 0, 'total'] }, 'postgres');
    expect(item!.alias).to.equal('total');
    expect(item!.expr).to.deep.equal({
      kind: 'call',
      name: 'coalesce',
      args: [
        { kind: 'column', table: 'orders', name: 'amount' },
        { kind: 'value', value: 0 },
      ],
    });
    const [mysql] = parseSelectItems({ sql: '?? + ?', bindings: ['score', 2] }, 'mysql');
    expect(mysql!.expr).to.deep.include({ kind: 'arithmetic', op: '+' });
  });

  it('reads casts, and writes them back for a shard', () => {
    const [item] = parseOrderItems({ sql: 'cast(score as numeric(10, 2)) desc' }, 'postgres');
    expect(item!.expr).to.deep.equal({ kind: 'cast', operand: { kind: 'column', table: undefined, name: 'score' }, type: 'numeric(10, 2)' });
    expect(printExpression(item!.expr)).to.deep.equal({ sql: 'cast(?? as numeric(10, 2))', bindings: ['score'] });
  });

  it('folds unquoted names to lower case on PostgreSQL only', () => {
    expect(parseSelectItems({ sql: 'Amount' }, 'postgres')[0]!.expr).to.deep.equal({ kind: 'column', table: undefined, name: 'amount' });
    expect(parseSelectItems({ sql: '"Amount"' }, 'postgres')[0]!.expr).to.deep.equal({ kind: 'column', table: undefined, name: 'Amount' });
    expect(parseSelectItems({ sql: 'Amount' }, 'mysql')[0]!.expr).to.deep.equal({ kind: 'column', table: undefined, name: 'Amount' });
  });
});
