import { expect } from 'chai';
import { rowComparator } from '../../../../lib/engine/merge/compare-values.js';
import { fromArray, mergeSorted } from '../../../../lib/engine/merge/k-way-merge.js';
import type { SortKey } from '../../../../lib/planner/merge-spec.js';
import { createRandom } from '../../../support/scatter-queries.js';

const key = (column: string, direction: 'asc' | 'desc', nulls: 'first' | 'last'): SortKey => ({ column, direction, nulls, expression: { kind: 'column', table: undefined, name: column } });

async function collect(source: AsyncIterable<Record<string, unknown>>) {
  const rows = [];
  for await (const row of source) rows.push(row);
  return rows;
}

describe('k-way merge', () => {
  it('interleaves sorted sources into one sorted sequence', async () => {
    const random = createRandom(7);
    const all = Array.from({ length: 500 }, (_, id) => ({ id, v: Math.floor(random() * 50) }));
    const compare = rowComparator([key('v', 'asc', 'last'), key('id', 'asc', 'last')], () => 'other');
    const sources = [0, 1, 2, 3].map((shard) => all.filter((row) => row.id % 4 === shard).sort(compare));
    const merged = await collect(mergeSorted(sources.map(fromArray), compare));
    expect(merged).to.deep.equal([...all].sort(compare));
  });

  it('places NULLs first or last per key, and compares exact numbers given as text numerically', async () => {
    const rows = [{ n: '10' }, { n: null }, { n: '9' }, { n: '-1.5' }];
    const ascLast = rowComparator([key('n', 'asc', 'last')], () => 'exact');
    expect([...rows].sort(ascLast).map((row) => row.n)).to.deep.equal(['-1.5', '9', '10', null]);
    const descFirst = rowComparator([key('n', 'desc', 'first')], () => 'exact');
    expect([...rows].sort(descFirst).map((row) => row.n)).to.deep.equal([null, '10', '9', '-1.5']);
  });

  it('holds one row per source at a time', async () => {
    let pulled = 0;
    async function* counted(values: number[]) {
      for (const value of values) {
        pulled++;
        yield { value };
      }
    }
    const compare = rowComparator([key('value', 'asc', 'last')], () => 'other');
    const merged = mergeSorted([counted([1, 4, 7]), counted([2, 5, 8]), counted([3, 6, 9])], compare);
    const first = await merged.next();
    expect(first.value).to.deep.equal({ value: 1 });
    expect(pulled, 'one head per source').to.equal(3);
    expect((await merged.next()).value).to.deep.equal({ value: 2 });
    expect(pulled, 'the replacement for the row yielded').to.equal(4);
    await merged.return(undefined);
  });
});
