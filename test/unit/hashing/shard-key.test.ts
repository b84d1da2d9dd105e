import { expect } from 'chai';
import { InvalidShardKeyError } from '../../../lib/errors.js';
import { normalizeShardKey, shardKeyIdentity } from '../../../lib/hashing/shard-key.js';

describe('shard keys', () => {
  it('accepts strings as they are, byte for byte', () => {
    expect(normalizeShardKey(' Mixed Case ')).to.equal(' Mixed Case ');
    expect(normalizeShardKey('')).to.equal('');
  });

  it('encodes integers as canonical base-10 text, for numbers and bigints alike', () => {
    expect(normalizeShardKey(42)).to.equal('42');
    expect(normalizeShardKey(42n)).to.equal('42');
    expect(normalizeShardKey(-7)).to.equal('-7');
    expect(normalizeShardKey(-0)).to.equal('0');
    expect(normalizeShardKey(2n ** 64n)).to.equal('18446744073709551616');
  });

  it('accepts Buffers and Uint8Arrays as bytes', () => {
    const bytes = Buffer.from('cafe', 'hex');
    expect(normalizeShardKey(bytes)).to.equal(bytes);
    expect(normalizeShardKey(new Uint8Array([1, 2]))).to.deep.equal(new Uint8Array([1, 2]));
  });

  const rejected: [string, unknown, string][] = [
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['a non-integer float', 1.5, 'float'],
    ['an integer beyond MAX_SAFE_INTEGER', 2 ** 60, 'unsafe integer'],
    ['a boolean', true, 'boolean'],
    ['a plain object', { id: 1 }, 'object'],
    ['a Date', new Date(0), 'object (Date)'],
    ['an array', [1, 2], 'array'],
    ['a symbol', Symbol('k'), 'symbol'],
    ['a function', () => 1, 'function'],
  ];
  for (const [label, key, keyType] of rejected) {
    it(`rejects ${label} with InvalidShardKeyError naming its type`, () => {
      let error: unknown;
      try {
        normalizeShardKey(key);
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(InvalidShardKeyError);
      expect(error).to.include({ code: 'INVALID_SHARD_KEY', keyType });
      expect((error as Error).message).to.contain(keyType);
    });
  }

  it('gives equal identities exactly to keys that hash alike', () => {
    expect(shardKeyIdentity(5)).to.equal(shardKeyIdentity('5'));
    expect(shardKeyIdentity(5n)).to.equal(shardKeyIdentity(5));
    expect(shardKeyIdentity('05')).to.not.equal(shardKeyIdentity(5));
  });
});
