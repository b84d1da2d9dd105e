import { expect } from 'chai';
import { InvalidShardKeyError } from '../../../lib/errors.js';
import { canonicalKey, type KeyColumn, type KeyType, keyTypeOfColumn } from '../../../lib/hashing/key-canonical.js';

const column = (type: KeyType, padded = false): KeyColumn => ({ table: 't', column: 'k', type, ...(padded ? { padded } : {}) });

describe('shard keys canonicalised by column type', () => {
  const accepted: [KeyType, unknown, unknown][] = [
    ['integer', 7, 7],
    ['integer', 7n, 7n],
    ['integer', '7', '7'],
    ['integer', '007', '7'],
    ['integer', ' 7 ', '7'],
    ['integer', '+7', '7'],
    ['integer', '-007', '-7'],
    ['integer', '-0', '0'],
    ['integer', '99999999999999999999', '99999999999999999999'],
    ['text', 'Ab ', 'Ab '],
    ['uuid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['uuid', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['uuid', 'a0eebc999c0b4ef8bb6d6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['uuid', 'a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ['other', '007', '007'],
  ];
  for (const [type, input, expected] of accepted) {
    it(`${type}: ${JSON.stringify(String(input))} (${typeof input}) hashes as ${JSON.stringify(String(expected))}`, () => {
      expect(canonicalKey(input, column(type))).to.deep.equal(expected);
    });
  }

  it('drops trailing spaces where the collation pads', () => {
    expect(canonicalKey('ab  ', column('text', true))).to.equal('ab');
    expect(canonicalKey('ab  ', column('text'))).to.equal('ab  ');
  });

  const refused: [KeyType, unknown][] = [
    ['integer', '1.5'],
    ['integer', '1e3'],
    ['integer', '0x10'],
    ['integer', ''],
    ['integer', 'abc'],
    ['integer', '1 2'],
    ['text', 42],
    ['text', 42n],
    ['uuid', 'not-a-uuid'],
    ['uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1'],
    ['binary', 'abc'],
  ];
  for (const [type, input] of refused) {
    it(`${type}: refuses ${JSON.stringify(String(input))} (${typeof input}) naming the column`, () => {
      const error = (() => {
        try {
          canonicalKey(input, column(type));
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).to.be.instanceOf(InvalidShardKeyError);
      expect((error as Error).message).to.include('t.k');
    });
  }

  it('reads key types from catalog type names of both databases', () => {
    const cases: [string, KeyType][] = [
      ['integer', 'integer'],
      ['bigint', 'integer'],
      ['smallint', 'integer'],
      ['int', 'integer'],
      ['tinyint', 'integer'],
      ['mediumint', 'integer'],
      ['text', 'text'],
      ['character varying', 'text'],
      ['varchar', 'text'],
      ['bpchar', 'text'],
      ['uuid', 'uuid'],
      ['bytea', 'binary'],
      ['varbinary', 'binary'],
      ['numeric', 'other'],
      ['timestamp with time zone', 'other'],
    ];
    for (const [name, type] of cases) expect(keyTypeOfColumn(name), name).to.equal(type);
  });
});
