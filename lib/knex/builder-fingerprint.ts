/**
 * A fingerprint of a knex builder from its statements, without compiling it: two builders with
 * the same fingerprint compile to the same SQL and bindings. The read cache keys entries by it,
 * so that a hit costs a walk over a few statements instead of planning and compiling (toSQL
 * alone takes several microseconds).
 *
 * Only builders made of plain values fingerprint: strings, numbers, booleans, bigints, null,
 * Dates, and arrays and plain objects of them. A raw fragment, a subquery, a callback, a buffer,
 * query options, comments or a query context (which a wrapIdentifier hook may read) give
 * undefined, and the caller keys the read by its compiled SQL instead. Written here because the
 * fingerprint must follow knex's own statement fields exactly; no library knows them.
 */
import { internalsOf, type AnyQueryBuilder, type Statement } from './builder-internals.js';

interface FingerprintedFields {
  _options?: unknown[];
  _comments?: unknown[];
  _queryContext?: unknown;
}

/** Returned by the writers below for a value that is not plain. */
const NOT_PLAIN = null;

/** `replaced`: the fingerprint of the builder with that statement in place of its own (a key list's single key). */
export function fingerprintOf(builder: AnyQueryBuilder, replaced?: { index: number; statement: Statement }): string | undefined {
  const internals = internalsOf(builder);
  const extra = builder as unknown as FingerprintedFields;
  if ((extra._options && extra._options.length > 0) || (extra._comments && extra._comments.length > 0) || extra._queryContext !== undefined) return undefined;
  let fingerprint = objectText(internals._single as Record<string, unknown>);
  if (fingerprint === NOT_PLAIN) return undefined;
  fingerprint = `${internals._method ?? 'select'}${fingerprint}`;
  const statements = internals._statements;
  for (let index = 0; index < statements.length; index++) {
    const statement = replaced?.index === index ? replaced.statement : statements[index]!;
    const text = objectText(statement as unknown as Record<string, unknown>);
    if (text === NOT_PLAIN) return undefined;
    fingerprint += `|${text}`;
  }
  return fingerprint;
}

/** Nesting deeper than this (a value that contains itself, say) is not fingerprinted. */
const MAX_DEPTH = 16;

/** `{length:name=value;...}` over the own fields: names carry their length, as a JSON key may hold `=` or `;`. */
function objectText(fields: Record<string, unknown>, depth = 0): string | null {
  if (depth > MAX_DEPTH) return NOT_PLAIN;
  let text = '{';
  for (const name in fields) {
    if (!Object.hasOwn(fields, name)) continue;
    const value = valueText(fields[name], depth + 1);
    if (value === NOT_PLAIN) return NOT_PLAIN;
    text += `${name.length}:${name}=${value};`;
  }
  return `${text}}`;
}

/** Each value tagged with its type, strings with their length, so that no two values write alike. */
function valueText(value: unknown, depth: number): string | null {
  switch (typeof value) {
    case 'string':
      return `s${value.length}:${value}`;
    case 'number':
      return Object.is(value, -0) ? 'n-0' : `n${value}`;
    case 'bigint':
      return `b${value}`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'undefined':
      return 'U';
    case 'object': {
      if (value === null) return 'N';
      if (value instanceof Date) return `d${value.getTime()}`;
      if (Array.isArray(value)) {
        if (depth > MAX_DEPTH) return NOT_PLAIN;
        let text = `[${value.length}:`;
        for (const element of value) {
          const written = valueText(element, depth + 1);
          if (written === NOT_PLAIN) return NOT_PLAIN;
          text += `${written},`;
        }
        return `${text}]`;
      }
      return Object.getPrototypeOf(value) === Object.prototype ? objectText(value as Record<string, unknown>, depth) : NOT_PLAIN;
    }
    default:
      return NOT_PLAIN;
  }
}
