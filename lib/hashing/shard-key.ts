/**
 * Shard-key normalisation: the one place that decides which JavaScript values are keys and
 * which bytes they hash as.
 *
 *   string        its UTF-8 bytes, exactly (no trimming, no case folding)
 *   integer       its canonical base-10 text: 42, 42n and '42' hash identically, which matters
 *                 because pg returns BIGINT columns as strings ('42')
 *   Uint8Array    its bytes (Buffer included)
 *
 * Everything else is refused with InvalidShardKeyError naming the value's type: null,
 * undefined, NaN, +-Infinity, non-integer numbers, integers beyond Number.MAX_SAFE_INTEGER
 * (already rounded: pass a bigint or a string), booleans, arrays and other objects.
 */
import { InvalidShardKeyError } from '../errors.js';

export type ShardKey = string | number | bigint | Uint8Array;

/** The value a key hashes as: text (hashed as UTF-8) or raw bytes. */
export function normalizeShardKey(key: unknown): string | Uint8Array {
  switch (typeof key) {
    case 'string':
      return key;
    case 'bigint':
      return key.toString(10);
    case 'number':
      return normalizeNumber(key);
    case 'object':
      if (key === null) throw new InvalidShardKeyError('null', 'a row without a shard key cannot be placed');
      if (key instanceof Uint8Array) return key;
      if (Array.isArray(key)) {
        throw new InvalidShardKeyError('array', 'pass one key; use whereIn() for several keys');
      }
      throw new InvalidShardKeyError(describeObject(key), 'use a string, an integer, a bigint or a Buffer');
    default:
      throw new InvalidShardKeyError(typeof key, 'use a string, an integer, a bigint or a Buffer');
  }
}

function normalizeNumber(key: number): string {
  if (Number.isNaN(key)) throw new InvalidShardKeyError('NaN', 'NaN is not a key');
  if (!Number.isFinite(key)) throw new InvalidShardKeyError('Infinity', 'an infinite number is not a key');
  if (!Number.isInteger(key)) {
    throw new InvalidShardKeyError('float', `${key} is not an integer; floating-point keys do not compare exactly`);
  }
  if (!Number.isSafeInteger(key)) {
    throw new InvalidShardKeyError(
      'unsafe integer',
      `${key} is beyond Number.MAX_SAFE_INTEGER and may already be rounded: pass it as a bigint or a string`,
    );
  }
  return key.toString(10);
}

function describeObject(key: object): string {
  const name = key.constructor?.name;
  return name && name !== 'Object' ? `object (${name})` : 'object';
}

/** A string that is equal for two keys exactly when they hash identically (42, 42n, '42'). */
export function shardKeyIdentity(key: unknown): string {
  const normalised = normalizeShardKey(key);
  return typeof normalised === 'string' ? `s:${normalised}` : `b:${Buffer.from(normalised).toString('hex')}`;
}
