/**
 * The plan of the commonest read, `kit.table('users').where('id', 7)` (with `.first()`, a
 * column list, a limit), decided from its few statements without reading the whole query
 * shape: the owner of the key. It is on every point read's path, where the full planner costs
 * several microseconds for the same answer.
 *
 * It takes only what it can see whole: a select of a sharded table named as is, whose one WHERE
 * condition is `shard key = a number, string or bigint`, and whose other statements are plain
 * column lists. Anything else (an alias, a second condition, a join, a raw fragment, a lock)
 * gives undefined and goes through planQuery's full path; the unit test checks that both paths
 * plan alike.
 */
import { internalsOf, type AnyQueryBuilder, type Statement } from '../knex/builder-internals.js';
import type { QueryPlan } from './query-plan.js';

/** The builder fields of `_single` a point read may carry: none of them changes where it runs. */
const ROUTING_NEUTRAL_SINGLE = new Set(['table', 'only', 'limit', 'offset', 'skipBinding']);

/** What the shortcut asks of the routing rules (planner/plan-query.ts's RoutingRules). */
interface ShardKeys {
  tables: ReadonlyMap<string, { shardKey: string }>;
}

export function planPointRead<Rules extends ShardKeys>(
  builder: AnyQueryBuilder,
  rules: Rules,
  ownerOfKey: (rules: Rules, table: string, value: unknown) => string,
): QueryPlan | undefined {
  const { _method: method, _single: single, _statements: statements } = internalsOf(builder);
  if (method !== 'select' && method !== 'first') return undefined;
  const table = single.table;
  if (typeof table !== 'string' || single.only === true) return undefined;
  const shardKey = rules.tables.get(table)?.shardKey;
  if (shardKey === undefined) return undefined;
  for (const field in single) if (!ROUTING_NEUTRAL_SINGLE.has(field)) return undefined;
  let key: unknown;
  let keys = 0;
  for (let index = 0; index < statements.length; index++) {
    const statement = statements[index]!;
    if (statement.grouping === 'columns' && isColumnList(statement)) continue;
    if (!isKeyEquality(statement, table, shardKey)) return undefined;
    key = statement.value;
    keys++;
  }
  if (keys !== 1) return undefined;
  return { table, method, route: { kind: 'one', shard: ownerOfKey(rules, table, key) } };
}

/** `column = value` on the shard key, its value a plain key (no NULL, list, date, expression or subquery). */
function isKeyEquality(statement: Statement, table: string, shardKey: string): boolean {
  if (statement.grouping !== 'where' || statement.type !== 'whereBasic' || statement.operator !== '=') return false;
  if (statement.not !== false || statement.bool !== 'and' || statement.asColumn !== false) return false;
  if (statement.column !== shardKey && statement.column !== `${table}.${shardKey}`) return false;
  const type = typeof statement.value;
  return type === 'number' || type === 'string' || type === 'bigint';
}

/** `select('id', 'name')` or `first()`: names only, nothing computed, nothing distinct. */
function isColumnList(statement: Statement): boolean {
  for (const field in statement) if (field !== 'grouping' && field !== 'value') return false;
  const { value } = statement as { value?: unknown };
  if (!Array.isArray(value)) return false;
  for (const column of value) if (typeof column !== 'string') return false;
  return true;
}
