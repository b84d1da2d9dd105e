/**
 * HAVING after the merge, with SQL's three-valued logic: a comparison with NULL is unknown,
 * NOT unknown is unknown, AND binds tighter than OR, and only rows whose condition is true
 * remain.
 */
import type { HavingTerm } from '../../planner/merge-spec.js';
import { compareValues, type Row, type ValueClass } from './compare-values.js';

type Truth = boolean | undefined;

export function havingFilter(terms: readonly HavingTerm[], classOf: (column: string) => ValueClass): (row: Row) => boolean {
  if (terms.length === 0) return () => true;
  return (row) => {
    let result: Truth = false;
    let conjunction: Truth = true;
    terms.forEach((term, index) => {
      if (index > 0 && term.bool === 'or') {
        result = or(result, conjunction);
        conjunction = true;
      }
      conjunction = and(conjunction, evaluate(term, row[term.column], classOf(term.column)));
    });
    return or(result, conjunction) === true;
  };
}

function evaluate(term: HavingTerm, value: unknown, valueClass: ValueClass): Truth {
  const truth = test(term, value, valueClass);
  return term.not && truth !== undefined ? !truth : truth;
}

function test(term: HavingTerm, value: unknown, valueClass: ValueClass): Truth {
  const isNull = value === null || value === undefined;
  if (term.operator === 'null') return isNull;
  if (isNull) return undefined;
  const compare = (literal: unknown) => (literal === null || literal === undefined ? undefined : compareValues(value, literal, valueClass));
  switch (term.operator) {
    case 'in': {
      const orders = (term.value as unknown[]).map(compare);
      if (orders.includes(0)) return true;
      return orders.includes(undefined) ? undefined : false;
    }
    case 'between': {
      const [low, high] = (term.value as unknown[]).map(compare);
      if (low === undefined || high === undefined) return undefined;
      return low >= 0 && high <= 0;
    }
    default: {
      const order = compare(term.value);
      if (order === undefined) return undefined;
      switch (term.operator) {
        case '=':
          return order === 0;
        case '<>':
        case '!=':
          return order !== 0;
        case '<':
          return order < 0;
        case '<=':
          return order <= 0;
        case '>':
          return order > 0;
        default:
          return order >= 0;
      }
    }
  }
}

function and(a: Truth, b: Truth): Truth {
  if (a === false || b === false) return false;
  return a === undefined || b === undefined ? undefined : true;
}

function or(a: Truth, b: Truth): Truth {
  if (a === true || b === true) return true;
  return a === undefined || b === undefined ? undefined : false;
}
