/**
 * Copies of read results for the cache: rows of plain values, Dates and byte arrays, nested in
 * arrays and objects (json columns). structuredClone is not used because it turns a Buffer into
 * a plain Uint8Array, which a caller of a bytea or blob column would notice.
 */

export function copyResult<T>(value: T): T {
  return copyValue(value) as T;
}

function copyValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyValue);
  if (value instanceof Date) return new Date(value.getTime());
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (value instanceof Uint8Array) return value.slice();
  // Own fields copied, the prototype kept (a driver's interval or range type keeps its methods).
  const prototype = Object.getPrototypeOf(value);
  const copy = (prototype === Object.prototype ? {} : Object.create(prototype)) as Record<string, unknown>;
  const fields = value as Record<string, unknown>;
  for (const key in fields) if (Object.hasOwn(fields, key)) copy[key] = copyValue(fields[key]);
  return copy;
}

/** Roughly the bytes a result holds (for the cache's byte bound): strings at two bytes a character. */
export function sizeOfResult(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 2 * value.length + 16;
    case 'object': {
      if (value === null) return 8;
      if (value instanceof Uint8Array) return value.byteLength + 32;
      if (value instanceof Date) return 32;
      let size = 32;
      if (Array.isArray(value)) for (const element of value) size += sizeOfResult(element);
      else for (const [key, field] of Object.entries(value)) size += 2 * key.length + sizeOfResult(field);
      return size;
    }
    default:
      return 8;
  }
}
