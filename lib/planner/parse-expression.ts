/**
 * Reads the SQL text of raw select items, HAVING conditions and ORDER BY items into Expr trees
 * (expression.ts) with node-sql-parser, the parser for each dialect (PostgreSQL; MariaDB, which
 * reads MySQL's expression syntax). Only what the merge can reason about is accepted: anything
 * else is refused with UnsupportedQueryError naming the construct, never guessed at.
 *
 * knex bindings (`?`) become parameters the parser accepts (`:p0`) and come back as `value`
 * nodes, so that a bound value is never spliced into SQL text.
 */
import type { SqlFamily } from '../config/config-types.js';
import { UnsupportedQueryError } from '../errors.js';
import { type ArithmeticOperator, type ComparisonOperator, type Expr, nodesOf } from './expression.js';
import { parserDatabase, parserFor } from './sql-parser.js';
import type { AggregateFunction } from './merge-spec.js';

/** A raw SQL fragment as knex holds it. */
export interface RawSql {
  sql: string;
  bindings?: unknown;
}

export interface SelectItem {
  expr: Expr;
  alias: string | undefined;
}

export interface OrderItem {
  expr: Expr;
  /** Undefined when the SQL does not say (ascending, unless knex's orderBy() direction says otherwise). */
  direction: 'asc' | 'desc' | undefined;
  nulls: 'first' | 'last' | undefined;
}

/** The aggregates a merge combines from per-shard partials. */
export const MERGED_AGGREGATES: ReadonlySet<string> = new Set<AggregateFunction>(['count', 'sum', 'min', 'max', 'avg']);
const COMPARISONS: Record<string, ComparisonOperator> = { '=': '=', '<>': '<>', '!=': '<>', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
const ARITHMETIC = new Set<string>(['+', '-', '*', '/', '%']);

/**
 * Aggregates the merge cannot combine. Any other function is a scalar: it may be selected and
 * passed through, but the merge evaluates or sorts by only the functions it knows.
 */
const UNMERGED_AGGREGATES = new Set([
  'array_agg', 'string_agg', 'group_concat', 'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg', 'json_arrayagg',
  'json_objectagg', 'xmlagg', 'bool_and', 'bool_or', 'every', 'bit_and', 'bit_or', 'bit_xor', 'std', 'stddev', 'stddev_pop',
  'stddev_samp', 'variance', 'var_pop', 'var_samp', 'covar_pop', 'covar_samp', 'corr', 'percentile_cont', 'percentile_disc',
  'mode', 'any_value', 'range_agg', 'range_intersect_agg',
]);

/**
 * Functions known to be scalar (one value per row), which a multi-shard select may pass through
 * unmerged. Any other function might be an aggregate (user-defined ones included), which would
 * give one row per shard: it is refused rather than guessed at.
 */
const SCALAR_FUNCTIONS = new Set([
  'md5', 'sha1', 'sha2', 'sha224', 'sha256', 'sha384', 'sha512', 'now', 'current_timestamp', 'current_date', 'localtimestamp',
  'random', 'rand', 'pg_sleep', 'sleep', 'to_char', 'to_date', 'to_timestamp', 'date_trunc', 'date_part', 'date_format', 'substr',
  'substring', 'replace', 'left', 'right', 'lpad', 'rpad', 'ltrim', 'rtrim', 'btrim', 'concat_ws', 'strpos', 'instr', 'locate',
  'reverse', 'repeat', 'split_part', 'initcap', 'format', 'sign', 'sqrt', 'power', 'pow', 'exp', 'ln', 'log', 'log10', 'mod',
  'trunc', 'truncate', 'if', 'ifnull', 'nvl', 'json_extract', 'json_build_object', 'jsonb_build_object', 'to_json', 'to_jsonb',
  'array_length', 'cardinality', 'gen_random_uuid', 'uuid', 'octet_length', 'bit_length', 'ascii', 'chr', 'char', 'hex', 'unhex',
  'encode', 'decode', 'age', 'date_add', 'date_sub', 'datediff', 'timestampdiff', 'unix_timestamp', 'from_unixtime', 'year',
  'month', 'day', 'hour', 'minute', 'second', 'week', 'weekday', 'dayofweek', 'quarter',
]);

/** Functions the merge knows the result of (see engine/merge/expression-types.ts). */
export const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set([
  'coalesce',
  'nullif',
  'abs',
  'lower',
  'upper',
  'length',
  'char_length',
  'trim',
  'concat',
  'round',
  'floor',
  'ceil',
  'ceiling',
  'greatest',
  'least',
]);

const cache = new Map<string, unknown>();

export function parseSelectItems(raw: RawSql, family: SqlFamily): SelectItem[] {
  const ast = parseStatement(`select ${withParameters(raw, family)}`, family, 'raw select') as { columns: { expr: Node; as: unknown }[] };
  return ast.columns.map((column) => ({ expr: toExpr(column.expr, bindingsOf(raw), family), alias: aliasOf(column.as) }));
}

export function parseCondition(raw: RawSql, family: SqlFamily): Expr {
  const ast = parseStatement(`select 1 from t having ${withParameters(raw, family)}`, family, 'raw having') as { having: Node };
  return toExpr(ast.having, bindingsOf(raw), family);
}

export function parseOrderItems(raw: RawSql, family: SqlFamily): OrderItem[] {
  const ast = parseStatement(`select 1 from t order by ${withParameters(raw, family)}`, family, 'raw orderBy') as {
    orderby: { expr: Node; type: string | null; nulls?: string | null }[];
  };
  return ast.orderby.map((item) => {
    const nulls = /first/i.test(item.nulls ?? '') ? 'first' : /last/i.test(item.nulls ?? '') ? 'last' : undefined;
    const direction = /desc/i.test(item.type ?? '') ? 'desc' : /asc/i.test(item.type ?? '') ? 'asc' : undefined;
    return { expr: toExpr(item.expr, bindingsOf(raw), family), direction, nulls };
  });
}

/** A column as knex takes it: `amount`, `orders.amount`. */
export function columnExpr(identifier: string): Expr {
  const dot = identifier.lastIndexOf('.');
  return dot < 0 ? { kind: 'column', table: undefined, name: identifier } : { kind: 'column', table: identifier.slice(0, dot), name: identifier.slice(dot + 1) };
}

function parseStatement(sql: string, family: SqlFamily, construct: string): unknown {
  const cacheKey = `${family}\u0000${sql}`;
  const cached = cache.get(cacheKey);
  if (cached) return cached;
  let ast: unknown;
  try {
    ast = parserFor(family).astify(sql, { database: parserDatabase(family) });
  } catch (error) {
    const detail = error instanceof Error ? error.message.slice(0, 160) : String(error);
    throw new UnsupportedQueryError(construct, `cannot read "${sql.slice(0, 120)}" as one expression the merge evaluates (${detail})`);
  }
  if (Array.isArray(ast)) throw new UnsupportedQueryError(construct, 'a raw fragment must hold one expression, not several statements');
  if (cache.size < 2000) cache.set(cacheKey, ast);
  return ast;
}

function bindingsOf(raw: RawSql): unknown[] {
  return Array.isArray(raw.bindings) ? raw.bindings : [];
}

/**
 * The raw SQL as the parser reads it: knex's `?` placeholders written as `:p<index>`, and
 * `fn(distinct x)` written as `fn__distinct(x)`, because node-sql-parser reads DISTINCT only
 * inside COUNT and only before an unqualified column. Quoted text is left alone.
 */
function withParameters(raw: RawSql, family: SqlFamily): string {
  if (raw.bindings !== undefined && !Array.isArray(raw.bindings)) {
    throw new UnsupportedQueryError('raw bindings', 'named bindings in a raw fragment are not read by the merge; use positional ? bindings');
  }
  const bindings = bindingsOf(raw);
  let index = 0;
  const unquoted = (text: string) =>
    text
      .replace(/\b(count|sum|avg|min|max)\s*\(\s*distinct\b/gi, (_match, fn: string) => `${fn}${DISTINCT_SUFFIX}(`)
      .replace(/\\?\?\??/g, (placeholder) => {
        if (placeholder === '??') return quoteIdentifier(bindings[index++], family);
        if (placeholder !== '?') throw new UnsupportedQueryError('raw bindings', 'an escaped ? in a raw fragment is not read by the merge');
        return `:p${index++}`;
      });
  // Quoted strings and identifiers are copied as they are; everything between them is rewritten.
  const out = raw.sql.replace(/('(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`)|([^'"`]+)/g, (_match, quoted: string | undefined, text: string | undefined) =>
    quoted ?? unquoted(text ?? ''),
  );
  if (index !== bindings.length) throw new UnsupportedQueryError('raw bindings', `the raw fragment has ${index} placeholders and ${bindings.length} bindings`);
  return out;
}

/** An identifier binding (??) as knex writes it: each dotted part quoted for the dialect. */
function quoteIdentifier(binding: unknown, family: SqlFamily): string {
  if (typeof binding !== 'string') throw new UnsupportedQueryError('raw bindings', 'an identifier binding (??) must be a string');
  const quote = family === 'postgres' ? '"' : '`';
  return binding
    .split('.')
    .map((part) => `${quote}${part.replaceAll(quote, quote + quote)}${quote}`)
    .join('.');
}

const DISTINCT_SUFFIX = '__distinct';

function aliasOf(alias: unknown): string | undefined {
  if (typeof alias === 'string') return alias;
  if (alias && typeof alias === 'object' && 'value' in alias) return String((alias as { value: unknown }).value);
  return undefined;
}

type Node = Record<string, any>;

function toExpr(node: Node, bindings: readonly unknown[], family: SqlFamily): Expr {
  const again = (child: Node) => toExpr(child, bindings, family);
  if (node.over || node.filter) throw new UnsupportedQueryError('window function', 'window functions and FILTER need every row of a partition on one shard');
  switch (node.type) {
    case 'number':
    case 'bigint':
      return { kind: 'literal', value: String(node.value), type: 'number' };
    case 'single_quote_string':
    case 'string':
      return { kind: 'literal', value: String(node.value).replaceAll("''", "'"), type: 'text' };
    case 'double_quote_string':
      // MySQL without ANSI_QUOTES reads "x" as a string; PostgreSQL's parser returns identifiers as column_ref.
      return { kind: 'literal', value: String(node.value).replaceAll('""', '"'), type: 'text' };
    case 'bool':
      return { kind: 'literal', value: node.value === true, type: 'boolean' };
    case 'null':
      return { kind: 'literal', value: null, type: 'null' };
    case 'param': {
      const index = Number(String(node.value).slice(1));
      return { kind: 'value', value: bindings[index] };
    }
    case 'column_ref':
      return columnOf(node, family);
    case 'aggr_func':
      return aggregateOf(node, again);
    case 'function':
      return callOf(node, again);
    case 'unary_expr':
      if (node.operator === '-') return { kind: 'negate', operand: again(node.expr) };
      if (node.operator === '+') return again(node.expr);
      if (String(node.operator).toUpperCase() === 'NOT') return { kind: 'not', operand: again(node.expr) };
      break;
    case 'binary_expr':
      return binaryOf(node, again);
    case 'cast':
      return castOf(node, again);
  }
  throw new UnsupportedQueryError(String(node.type ?? 'expression'), `${describe(node)} is not an expression the merge evaluates`);
}

function columnOf(node: Node, family: SqlFamily): Expr {
  const written = typeof node.column === 'string' ? node.column : node.column?.expr?.value;
  if (typeof written !== 'string' || written === '*') throw new UnsupportedQueryError('raw column', 'a star inside an expression cannot be merged');
  // PostgreSQL folds unquoted names to lower case; the column is printed back quoted, so fold it here.
  const quoted = typeof node.column === 'object' && node.column?.expr?.type !== 'default';
  const name = family === 'postgres' && !quoted ? written.toLowerCase() : written;
  const table = typeof node.table === 'string' ? (family === 'postgres' ? node.table.toLowerCase() : node.table) : undefined;
  return { kind: 'column', table, name };
}

function aggregateOf(node: Node, again: (child: Node) => Expr): Expr {
  const fn = String(node.name).toLowerCase();
  if (!MERGED_AGGREGATES.has(fn)) throw new UnsupportedQueryError(fn, `${fn}() across shards is not merged`);
  const argument = node.args?.expr;
  const distinct = /distinct/i.test(String(node.args?.distinct ?? ''));
  if (node.args?.orderby || node.args?.separator) throw new UnsupportedQueryError(fn, `${fn}() with ORDER BY or SEPARATOR is not merged`);
  if (argument?.type === 'star') {
    if (fn !== 'count' || distinct) throw new UnsupportedQueryError(fn, `${fn}(*) is not an aggregate`);
    return { kind: 'aggregate', fn, distinct: false, argument: '*' };
  }
  return { kind: 'aggregate', fn: fn as AggregateFunction, distinct, argument: again(argument) };
}

function callOf(node: Node, again: (child: Node) => Expr): Expr {
  const name = String(node.name?.name?.map((part: Node) => part.value).join('.') ?? node.name).toLowerCase();
  const args: Node[] = node.args?.value ?? [];
  if (name.endsWith(DISTINCT_SUFFIX) && args.length === 1) {
    const fn = name.slice(0, -DISTINCT_SUFFIX.length) as AggregateFunction;
    if (node.over) throw new UnsupportedQueryError('window function', 'window functions need every row of a partition on one shard');
    return { kind: 'aggregate', fn, distinct: true, argument: again(args[0]!) };
  }
  if (name === 'not' && args.length === 1) return { kind: 'not', operand: again(args[0]!) };
  if (UNMERGED_AGGREGATES.has(name) || name.startsWith('regr_')) throw new UnsupportedQueryError(name, `${name}() across shards is not merged`);
  if (!/^[a-z_][a-z0-9_$.]*$/.test(name)) throw new UnsupportedQueryError('raw expression', `cannot read the function name "${name.slice(0, 40)}"`);
  return { kind: 'call', name, args: args.map(again) };
}

function castOf(node: Node, again: (child: Node) => Expr): Expr {
  const [target] = (node.target ?? []) as Node[];
  const type = String(target?.dataType ?? '').toLowerCase();
  const size = [target?.length, target?.scale].filter((part) => part !== undefined && part !== null);
  if ((node.target ?? []).length !== 1 || !/^[a-z][a-z ]*$/.test(type) || size.some((part) => !Number.isInteger(Number(part)))) {
    throw new UnsupportedQueryError('cast', 'a cast to this type is not read by the merge');
  }
  return { kind: 'cast', operand: again(node.expr), type: size.length > 0 ? `${type}(${size.join(', ')})` : type };
}

function binaryOf(node: Node, again: (child: Node) => Expr): Expr {
  const operator = String(node.operator).toUpperCase();
  const comparison = COMPARISONS[operator];
  if (comparison) return { kind: 'compare', op: comparison, left: again(node.left), right: again(node.right) };
  if (ARITHMETIC.has(operator)) return { kind: 'arithmetic', op: operator as ArithmeticOperator, left: again(node.left), right: again(node.right) };
  if (operator === 'AND' || operator === 'OR') return { kind: 'logic', op: operator === 'AND' ? 'and' : 'or', left: again(node.left), right: again(node.right) };
  if ((operator === 'IS' || operator === 'IS NOT') && node.right?.type === 'null') {
    return { kind: 'isNull', operand: again(node.left), negated: operator === 'IS NOT' };
  }
  const list: Node[] | undefined = node.right?.type === 'expr_list' ? node.right.value : undefined;
  if ((operator === 'IN' || operator === 'NOT IN') && list) {
    return { kind: 'in', operand: again(node.left), list: list.map(again), negated: operator === 'NOT IN' };
  }
  if ((operator === 'BETWEEN' || operator === 'NOT BETWEEN') && list?.length === 2) {
    return { kind: 'between', operand: again(node.left), low: again(list[0]!), high: again(list[1]!), negated: operator === 'NOT BETWEEN' };
  }
  throw new UnsupportedQueryError(operator.toLowerCase(), `the operator ${operator} is not evaluated by the merge`);
}

function describe(node: Node): string {
  if (node.type === 'select') return 'a subquery';
  if (node.type === 'case') return 'CASE';
  if (node.type === 'cast') return 'a cast';
  return `"${String(node.type)}"`;
}

/** A function in `expr` whose result the merge does not know (it may still pass through a select). */
export function unknownFunction(expr: Expr): string | undefined {
  for (const node of nodesOf(expr)) if (node.kind === 'call' && !KNOWN_FUNCTIONS.has(node.name)) return node.name;
  return undefined;
}

/** A merge sorts by or computes a value only if it knows its type. */
export function refuseUnknownFunctions(expr: Expr, why: string): void {
  const name = unknownFunction(expr);
  if (name) throw new UnsupportedQueryError(name, `${name}() is not a function the merge knows ${why} of (known: ${[...KNOWN_FUNCTIONS].join(', ')})`);
}

/** Functions the merge itself evaluates over merged values (engine/merge/evaluate-expression.ts). */
export const EVALUATED_FUNCTIONS: ReadonlySet<string> = new Set(['coalesce', 'nullif', 'abs']);

/** What the merge computes after combining groups may use only the functions it evaluates. */
export function refuseUnevaluated(expr: Expr): void {
  for (const node of nodesOf(expr)) {
    if (node.kind === 'cast') throw new UnsupportedQueryError('cast', 'a cast over merged aggregates is not evaluated by the merge');
    if (node.kind === 'call' && !EVALUATED_FUNCTIONS.has(node.name)) {
      throw new UnsupportedQueryError(node.name, `${node.name}() over merged aggregates is not evaluated by the merge (it evaluates ${[...EVALUATED_FUNCTIONS].join(', ')}); select the aggregate and apply it in the application`);
    }
  }
}

/** A function in `expr` not known to be scalar: it might aggregate, so a multi-shard select refuses it. */
export function refuseUnknownAggregates(expr: Expr): void {
  for (const node of nodesOf(expr)) {
    if (node.kind === 'call' && !KNOWN_FUNCTIONS.has(node.name) && !SCALAR_FUNCTIONS.has(node.name)) {
      throw new UnsupportedQueryError(node.name, `cannot tell whether ${node.name}() aggregates (one row per shard would be wrong); run it on one shard with kit.forKey(key)`);
    }
  }
}
