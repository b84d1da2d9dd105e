/**
 * Evaluates an expression over a merged row (a group's combined values) as the dialect would
 * have evaluated it on one database: its types (expression-types.ts), exact decimal arithmetic
 * with the dialect's scales (decimal.ts), SQL's three-valued logic (a comparison with NULL is
 * unknown; only true keeps a HAVING row), division by zero an error on PostgreSQL and NULL on
 * MySQL, and the result in the form the driver returns (pg's BIGINT and NUMERIC as text).
 */
import type { SqlFamily } from '../../config/config-types.js';
import { QueryFailedError, UnsupportedQueryError } from '../../errors.js';
import type { Expr } from '../../planner/expression.js';
import { compareCodePoints, type Row } from './compare-values.js';
import {
  addDecimals,
  compareDecimals,
  type Decimal,
  divideDecimal,
  divisionScale,
  formatDecimal,
  isDecimalText,
  multiplyDecimals,
  negateDecimal,
  parseDecimal,
  remainderDecimal,
} from './decimal.js';
import { isInteger, isNumeric, type SqlType, type TypeContext, typeOfExpression } from './expression-types.js';

export interface EvaluationContext extends TypeContext {
  /** How the driver returns BIGINT: pg as text, PGlite and mysql2 as numbers. */
  bigintsAs: 'string' | 'number';
}

/** A value in the form its type computes with: bigint, Decimal, number, string, boolean, Date. */
type Value = unknown;

interface Compiled {
  type: SqlType;
  run(row: Row): Value;
}

export interface CompiledExpression {
  type: SqlType;
  /** The value as the driver would have returned it. */
  evaluate(row: Row): unknown;
  /** True, false or null (unknown), for HAVING. */
  test(row: Row): boolean | null;
}

export function compileExpression(expr: Expr, context: EvaluationContext): CompiledExpression {
  const compiled = compile(expr, context);
  return {
    type: compiled.type,
    evaluate: (row) => present(compiled.run(row), compiled.type, context),
    test: (row) => truth(compiled.run(row)),
  };
}

function compile(expr: Expr, context: EvaluationContext): Compiled {
  const type = typeOfExpression(expr, context);
  const child = (node: Expr) => compile(node, context);
  switch (expr.kind) {
    case 'literal':
      return { type, run: () => fromDriver(expr.value, type) };
    case 'value':
      return { type, run: () => fromDriver(expr.value, type) };
    case 'ref':
      return { type, run: (row) => fromDriver(row[expr.key], type) };
    case 'negate': {
      const operand = child(expr.operand);
      return { type, run: (row) => negate(operand.run(row), type) };
    }
    case 'not': {
      const operand = child(expr.operand);
      return { type, run: (row) => not(truth(operand.run(row))) };
    }
    case 'arithmetic': {
      const left = child(expr.left);
      const right = child(expr.right);
      return { type, run: (row) => arithmetic(expr.op, type, convert(left.run(row), left.type, type), convert(right.run(row), right.type, type), context.family) };
    }
    case 'compare': {
      const left = child(expr.left);
      const right = child(expr.right);
      return {
        type,
        run: (row) => {
          const order = compareTyped(left.run(row), left.type, right.run(row), right.type);
          return order === null ? null : holds(expr.op, order);
        },
      };
    }
    case 'logic': {
      const left = child(expr.left);
      const right = child(expr.right);
      const combine = expr.op === 'and' ? and : or;
      return { type, run: (row) => combine(truth(left.run(row)), truth(right.run(row))) };
    }
    case 'isNull': {
      const operand = child(expr.operand);
      return { type, run: (row) => (operand.run(row) === null) !== expr.negated };
    }
    case 'in': {
      const operand = child(expr.operand);
      const list = expr.list.map(child);
      return {
        type,
        run: (row) => {
          const value = operand.run(row);
          const orders = list.map((item) => compareTyped(value, operand.type, item.run(row), item.type));
          const found: boolean | null = orders.includes(0) ? true : orders.includes(null) ? null : false;
          return expr.negated ? not(found) : found;
        },
      };
    }
    case 'between': {
      const operand = child(expr.operand);
      const low = child(expr.low);
      const high = child(expr.high);
      return {
        type,
        run: (row) => {
          const value = operand.run(row);
          const above = compareTyped(value, operand.type, low.run(row), low.type);
          const below = compareTyped(value, operand.type, high.run(row), high.type);
          const inside = and(above === null ? null : above >= 0, below === null ? null : below <= 0);
          return expr.negated ? not(inside) : inside;
        },
      };
    }
    case 'call':
      return compileCall(expr.name, expr.args.map(child), type);
    default:
      throw new UnsupportedQueryError(expr.kind, `${expr.kind === 'column' ? `column "${expr.name}"` : 'an aggregate'} must be grouped or merged before it is evaluated`);
  }
}

function compileCall(name: string, args: Compiled[], type: SqlType): Compiled {
  switch (name) {
    case 'coalesce':
      return {
        type,
        run: (row) => {
          for (const arg of args) {
            const value = arg.run(row);
            if (value !== null) return convert(value, arg.type, type);
          }
          return null;
        },
      };
    case 'nullif':
      return {
        type,
        run: (row) => {
          const [first, second] = args as [Compiled, Compiled];
          const value = first.run(row);
          return compareTyped(value, first.type, second.run(row), second.type) === 0 ? null : value;
        },
      };
    case 'abs':
      return {
        type,
        run: (row) => {
          const value = args[0]!.run(row);
          return isNegative(value, type) ? negate(value, type) : value;
        },
      };
    default:
      throw new UnsupportedQueryError(name, `${name}() over merged aggregates is not evaluated by the merge; only coalesce, nullif and abs are`);
  }
}

/** A value as the driver returned it, in the form its type computes with. */
function fromDriver(raw: unknown, type: SqlType): Value {
  if (raw === null || raw === undefined) return null;
  switch (type) {
    case 'int':
    case 'bigint':
      return typeof raw === 'bigint' ? raw : BigInt(typeof raw === 'number' ? Math.trunc(raw) : String(raw));
    case 'decimal':
      return parseDecimal(typeof raw === 'bigint' ? raw : String(raw));
    case 'float':
      return Number(raw);
    case 'boolean':
      return typeof raw === 'boolean' ? raw : Number(raw) !== 0;
    default:
      return raw;
  }
}

/** `value` of type `from` in the form of type `to` (integers widen to decimals, exact to float). */
function convert(value: Value, from: SqlType, to: SqlType): Value {
  if (value === null || from === to) return value;
  if (to === 'decimal' && isInteger(from)) return { units: value as bigint, scale: 0 };
  if (to === 'float') return toNumber(value, from);
  if (isInteger(to) && isInteger(from)) return value;
  if (isNumeric(to) && from === 'text' && isDecimalText(String(value))) return fromDriver(value, to);
  return value;
}

function toNumber(value: Value, type: SqlType): number {
  if (isInteger(type)) return Number(value as bigint);
  if (type === 'decimal') return Number(formatDecimal(value as Decimal));
  return Number(value);
}

function negate(value: Value, type: SqlType): Value {
  if (value === null) return null;
  if (isInteger(type)) return -(value as bigint);
  if (type === 'decimal') return negateDecimal(value as Decimal);
  return -(value as number);
}

function isNegative(value: Value, type: SqlType): boolean {
  if (value === null) return false;
  if (isInteger(type)) return (value as bigint) < 0n;
  if (type === 'decimal') return (value as Decimal).units < 0n;
  return (value as number) < 0;
}

function arithmetic(op: string, type: SqlType, left: Value, right: Value, family: SqlFamily): Value {
  if (left === null || right === null) return null;
  const divides = op === '/' || op === '%';
  if (divides && isZero(right, type)) {
    // MySQL returns NULL (with a warning) where PostgreSQL raises 22012.
    if (family === 'mysql') return null;
    throw new QueryFailedError('division by zero in an expression evaluated after the merge', { driverCode: '22012', retryable: false });
  }
  if (type === 'float') return plainArithmetic(op, left as number, right as number);
  if (type === 'decimal') return decimalArithmetic(op, left as Decimal, right as Decimal, family);
  if (isInteger(type)) return plainArithmetic(op, left as bigint, right as bigint);
  throw new UnsupportedQueryError(op, `arithmetic on ${type} values is not evaluated by the merge`);
}

function isZero(value: Value, type: SqlType): boolean {
  if (isInteger(type)) return value === 0n;
  if (type === 'decimal') return (value as Decimal).units === 0n;
  return value === 0;
}

function decimalArithmetic(op: string, a: Decimal, b: Decimal, family: SqlFamily): Decimal {
  switch (op) {
    case '+':
      return addDecimals(a, b);
    case '-':
      return addDecimals(a, negateDecimal(b));
    case '*':
      return multiplyDecimals(a, b);
    case '/': {
      return divideDecimal(a, b, divisionScale(family, a, b));
    }
    default:
      return remainderDecimal(a, b);
  }
}

/**
 * + - * / % of two floats or two integers. On BigInts `/` truncates toward zero and `%` takes the
 * dividend's sign, which is PostgreSQL's integer arithmetic.
 */
function plainArithmetic<T extends number | bigint>(op: string, a: T, b: T): T {
  // The same operators on either type; TypeScript cannot type them over the union.
  const [x, y] = [a as unknown as number, b as unknown as number];
  switch (op) {
    case '+':
      return (x + y) as unknown as T;
    case '-':
      return (x - y) as unknown as T;
    case '*':
      return (x * y) as unknown as T;
    case '/':
      return (x / y) as unknown as T;
    default:
      return (x % y) as unknown as T;
  }
}

/** The order of two typed values, or null when either is NULL. */
function compareTyped(a: Value, aType: SqlType, b: Value, bType: SqlType): number | null {
  if (a === null || b === null) return null;
  if (isNumeric(aType) || isNumeric(bType)) {
    const left = asExact(a, aType);
    const right = asExact(b, bType);
    if (left && right) return compareDecimals(left, right);
    return Math.sign(toComparableNumber(a, aType) - toComparableNumber(b, bType));
  }
  if (aType === 'temporal' || bType === 'temporal') {
    // A date or timestamp against a bound value: as the database casts the value to the column's type.
    const left = asTime(a);
    const right = asTime(b);
    if (left === undefined || right === undefined) throw new UnsupportedQueryError('having', 'a date or time is compared with a value that is not one');
    return Math.sign(left - right);
  }
  if (typeof a === 'string' && typeof b === 'string') return Math.sign(compareCodePoints(a, b));
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return Math.sign(compareCodePoints(String(a), String(b)));
}

function asTime(value: Value): number | undefined {
  const time = value instanceof Date ? value.getTime() : typeof value === 'string' || typeof value === 'number' ? new Date(value).getTime() : Number.NaN;
  return Number.isNaN(time) ? undefined : time;
}

/** An exact value as a decimal; undefined for floats and text that is not a number. */
function asExact(value: Value, type: SqlType): Decimal | undefined {
  if (isInteger(type)) return { units: value as bigint, scale: 0 };
  if (type === 'decimal') return value as Decimal;
  if (type === 'text' && isDecimalText(String(value))) return parseDecimal(String(value));
  return undefined;
}

function toComparableNumber(value: Value, type: SqlType): number {
  return type === 'text' ? Number(value) : toNumber(value, type);
}

function holds(op: string, order: number): boolean {
  switch (op) {
    case '=':
      return order === 0;
    case '<>':
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

function truth(value: Value): boolean | null {
  if (value === null) return null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value !== 0n;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'object' && value !== null && 'units' in value) return (value as Decimal).units !== 0n;
  return Boolean(value);
}

function not(value: boolean | null): boolean | null {
  return value === null ? null : !value;
}

function and(a: boolean | null, b: boolean | null): boolean | null {
  if (a === false || b === false) return false;
  return a === null || b === null ? null : true;
}

function or(a: boolean | null, b: boolean | null): boolean | null {
  if (a === true || b === true) return true;
  return a === null || b === null ? null : false;
}

/** A computed value (bigint, Decimal, number, ...) in the form the driver would have returned it. */
export function present(value: Value, type: SqlType, context: EvaluationContext): unknown {
  if (value === null) return null;
  switch (type) {
    case 'int':
      return Number(value as bigint);
    case 'bigint':
      return context.bigintsAs === 'string' ? (value as bigint).toString() : Number(value as bigint);
    case 'decimal':
      return formatDecimal(value as Decimal);
    case 'boolean':
      return context.family === 'mysql' ? Number(value as boolean) : value;
    default:
      return value;
  }
}

