/**
 * The k-way merge: interleaves k sorted row sources into one sorted stream with a binary heap
 * that holds one row per source, so memory stays O(k) however many rows flow through. Ties
 * keep source order, which keeps the merge deterministic.
 */
import type { Row, RowComparator } from './compare-values.js';

interface HeapEntry {
  row: Row;
  source: number;
}

export async function* mergeSorted(sources: readonly AsyncIterable<Row>[], compare: RowComparator): AsyncGenerator<Row> {
  const iterators = sources.map((source) => source[Symbol.asyncIterator]());
  const heap: HeapEntry[] = [];
  const before = (a: HeapEntry, b: HeapEntry) => {
    const order = compare(a.row, b.row);
    return order < 0 || (order === 0 && a.source < b.source);
  };
  const push = (entry: HeapEntry) => {
    heap.push(entry);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  };
  const pop = (): HeapEntry => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === index) break;
        [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
        index = smallest;
      }
    }
    return top;
  };
  try {
    await Promise.all(
      iterators.map(async (iterator, source) => {
        const next = await iterator.next();
        if (!next.done) push({ row: next.value, source });
      }),
    );
    while (heap.length > 0) {
      const { row, source } = pop();
      yield row;
      const next = await iterators[source]!.next();
      if (!next.done) push({ row: next.value, source });
    }
  } finally {
    await Promise.all(iterators.map((iterator) => iterator.return?.()));
  }
}

/** Rows of an array as an async source. */
export async function* fromArray(rows: readonly Row[]): AsyncGenerator<Row> {
  yield* rows;
}
