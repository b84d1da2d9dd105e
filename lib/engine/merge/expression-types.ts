/**
 * The SQL type of an expression the merge evaluates or sorts by, as the dialect's own type
 * rules give it: it decides the arithmetic (integer division on PostgreSQL, four more decimals
 * on MySQL), how values compare, and the form the driver would have returned.
 *
 *   count(*)            bigint
 *   sum(integer)        bigint on PostgreSQL, decimal on MySQL
 *   sum(bigint|decimal) decimal;    avg(exact) decimal;    sum/avg(float) float
 *   int op int          int (bigint if either is); `/` is decimal on MySQL
 *   exact op decimal    decimal;    anything op float    float
 */
import type { SqlFamily } from '../../config/config-types.js';
import type { Expr } from '../../planner/expression.js';
import type { ValueClass } from './compare-values.js';

export type SqlType = 'int' | 'bigint' | 'decimal' | 'float' | 'boolean' | 'text' | 'temporal' | 'other' | 'null';

const INT = /^(tiny|small|medium)?int(eger)?$|^int[248]$|^smallserial$|^serial$|^year$/i;
const BIGINT = /^bigint$|^bigserial$/i;
const DECIMAL = /^(numeric|decimal)$/i;
const FLOAT = /real|double|float/i;
const TEXT = /char|text|enum|set|citext|name|uuid/i;
const TEMPORAL = /date|time/i;

/** A column's type as knex's columnInfo() names it. */
export function sqlTypeOf(columnType: string): SqlType {
  const type = columnType.trim();
  if (BIGINT.test(type)) return 'bigint';
  if (INT.test(type) || /^bit$/i.test(type)) return 'int';
  if (DECIMAL.test(type)) return 'decimal';
  if (FLOAT.test(type)) return 'float';
  if (/^bool(ean)?$/i.test(type)) return 'boolean';
  if (TEMPORAL.test(type)) return 'temporal';
  if (TEXT.test(type)) return 'text';
  return 'other';
}

export function classOfSqlType(type: SqlType): ValueClass {
  if (type === 'int' || type === 'bigint' || type === 'decimal') return 'exact';
  if (type === 'float') return 'approximate';
  return 'other';
}

export interface TypeContext {
  family: SqlFamily;
  /** The type of a column of the query's tables ('other' when unknown). */
  columnType(table: string | undefined, name: string): SqlType;
}

const NUMERIC_RANK: Partial<Record<SqlType, number>> = { int: 1, bigint: 2, decimal: 3, float: 4 };

export function isNumeric(type: SqlType): boolean {
  return NUMERIC_RANK[type] !== undefined;
}

export function isInteger(type: SqlType): boolean {
  return type === 'int' || type === 'bigint';
}

export function typeOfExpression(expr: Expr, context: TypeContext): SqlType {
  const typeOf = (node: Expr) => typeOfExpression(node, context);
  switch (expr.kind) {
    case 'literal':
      return expr.type === 'number' ? numberLiteralType(expr.value as string, context.family) : expr.type;
    case 'value':
      return valueType(expr.value, context.family);
    case 'column':
      return context.columnType(expr.table, expr.name);
    case 'aggregate':
      return aggregateType(expr.fn, expr.argument === '*' ? 'int' : typeOf(expr.argument), context.family);
    case 'ref':
      return expr.source.kind === 'group'
        ? typeOf(expr.source.expression)
        : aggregateType(expr.source.fn, expr.source.argument === '*' ? 'int' : typeOf(expr.source.argument), context.family);
    case 'negate':
      return typeOf(expr.operand);
    case 'arithmetic':
      return arithmeticType(expr.op, typeOf(expr.left), typeOf(expr.right), context.family);
    case 'call':
      return callType(expr.name, expr.args.map(typeOf));
    case 'cast':
      return sqlTypeOf(expr.type.replace(/\(.*$/, ''));
    default:
      return 'boolean';
  }
}

export function aggregateType(fn: string, argument: SqlType, family: SqlFamily): SqlType {
  switch (fn) {
    case 'count':
      return 'bigint';
    case 'sum':
      if (argument === 'int') return family === 'postgres' ? 'bigint' : 'decimal';
      if (argument === 'bigint' || argument === 'decimal') return 'decimal';
      return argument === 'float' ? 'float' : 'other';
    case 'avg':
      if (isNumeric(argument)) return argument === 'float' ? 'float' : 'decimal';
      return 'other';
    default:
      return argument;
  }
}

function arithmeticType(op: string, left: SqlType, right: SqlType, family: SqlFamily): SqlType {
  if (left === 'null') return right === 'null' ? 'null' : right;
  if (right === 'null') return left;
  if (!isNumeric(left) || !isNumeric(right)) return 'other';
  if (left === 'float' || right === 'float') return 'float';
  if (left === 'decimal' || right === 'decimal') return 'decimal';
  if (family === 'mysql') return op === '/' ? 'decimal' : 'bigint';
  return left === 'bigint' || right === 'bigint' ? 'bigint' : 'int';
}

function callType(name: string, args: SqlType[]): SqlType {
  switch (name) {
    case 'lower':
    case 'upper':
    case 'trim':
    case 'concat':
      return 'text';
    case 'length':
    case 'char_length':
      return 'int';
    case 'abs':
    case 'round':
    case 'floor':
    case 'ceil':
    case 'ceiling':
      return args[0] ?? 'other';
    case 'nullif':
      return args[0] ?? 'other';
    case 'coalesce':
    case 'greatest':
    case 'least':
      return commonType(args);
    default:
      // A function the merge does not know: its values pass through, compared as they come.
      return 'other';
  }
}

/** The type COALESCE, GREATEST and LEAST give their arguments together. */
export function commonType(types: readonly SqlType[]): SqlType {
  const known = types.filter((type) => type !== 'null');
  if (known.length === 0) return 'null';
  if (known.every(isNumeric)) return known.reduce((a, b) => (NUMERIC_RANK[a]! >= NUMERIC_RANK[b]! ? a : b));
  return known.every((type) => type === known[0]) ? known[0]! : 'other';
}

function numberLiteralType(text: string, family: SqlFamily): SqlType {
  if (/[eE]/.test(text)) return family === 'postgres' ? 'decimal' : 'float';
  if (text.includes('.')) return 'decimal';
  const value = BigInt(text);
  if (family === 'mysql') return value <= 9223372036854775807n ? 'bigint' : 'decimal';
  if (value <= 2147483647n) return 'int';
  return value <= 9223372036854775807n ? 'bigint' : 'decimal';
}

function valueType(value: unknown, family: SqlFamily): SqlType {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return 'bigint';
  // knex sends numbers as their shortest text, which both databases read as an exact literal.
  if (typeof value === 'number') return Number.isInteger(value) ? numberLiteralType(String(value), family) : /e/i.test(String(value)) ? 'float' : 'decimal';
  if (typeof value === 'boolean') return 'boolean';
  if (value instanceof Date) return 'temporal';
  return typeof value === 'string' ? 'text' : 'other';
}
