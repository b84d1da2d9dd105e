/**
 * JSON for cached values and their keys: it keeps what plain JSON loses or confuses, Dates
 * (invalid ones too), byte arrays (Buffer, Uint8Array), BigInts, NaN and the Infinities, as
 * tagged objects. Other class instances arrive as plain objects. The tags start with a NUL, so
 * no key of an application's own JSON is taken for one.
 */

const DATE = '\u0000sk:date';
const BYTES = '\u0000sk:bytes';
const BIGINT = '\u0000sk:bigint';
const NUMBER = '\u0000sk:number';

export function encodeTagged(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, field: unknown) {
    // The holder's own value: JSON.stringify has already turned a Date or a Buffer into its toJSON().
    const original = this[key];
    if (original instanceof Date) return { [DATE]: String(original.getTime()) };
    if (original instanceof Uint8Array) return { [BYTES]: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
    if (typeof original === 'bigint') return { [BIGINT]: String(original) };
    if (typeof original === 'number' && !Number.isFinite(original)) return { [NUMBER]: String(original) };
    return field;
  });
}

export function decodeTagged(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
    const tagged = value as Record<string, string>;
    if (tagged[DATE] !== undefined) return new Date(Number(tagged[DATE]));
    if (tagged[BYTES] !== undefined) return Buffer.from(tagged[BYTES], 'base64');
    if (tagged[BIGINT] !== undefined) return BigInt(tagged[BIGINT]);
    if (tagged[NUMBER] !== undefined) return Number(tagged[NUMBER]);
    return value;
  });
}
