import { expect } from 'chai';
import { InvalidTokenError } from '../../../lib/errors.js';
import { ConsistencyToken } from '../../../lib/replicas/consistency-token.js';
import { currentSession, PRIMARY_ONLY, ReadSession } from '../../../lib/replicas/read-session.js';

const lsnOrder = (_shard: string, position: string, target: string) => Number.parseInt(position, 16) >= Number.parseInt(target, 16);

describe('consistency tokens and sessions', () => {
  it('round-trips through a string', () => {
    const token = new ConsistencyToken([
      ['pg-a', '0/3000060'],
      ['maria-1', '0-1-8,1-2-5'],
    ]);
    const text = token.toString();
    expect(text).to.match(/^sk1\.[A-Za-z0-9_-]+$/);
    expect([...ConsistencyToken.parse(text).positions]).to.deep.equal([...token.positions]);
  });

  for (const bad of ['', 'nonsense', 'sk1.!!!', `sk1.${Buffer.from('[1]').toString('base64url')}`, `sk1.${Buffer.from('{"a":1}').toString('base64url')}`]) {
    it(`rejects ${JSON.stringify(bad)} with INVALID_TOKEN`, () => {
      expect(() => ConsistencyToken.parse(bad)).to.throw(InvalidTokenError);
    });
  }

  it('a session keeps the furthest position per shard and resumes from a token', () => {
    const session = new ReadSession(lsnOrder);
    session.record('a', '20');
    session.record('a', '10');
    session.record('b', '5');
    expect(session.positionFor('a')).to.equal('20');
    const resumed = new ReadSession(lsnOrder, ConsistencyToken.parse(session.token().toString()));
    expect(resumed.positionFor('b')).to.equal('5');
  });

  it('a session pinned to a primary stays pinned', () => {
    const session = new ReadSession(lsnOrder);
    session.requirePrimary('a');
    session.record('a', 'ff');
    expect(session.positionFor('a')).to.equal(PRIMARY_ONLY);
  });

  it('follows the awaits of the function it runs', async () => {
    const session = new ReadSession(lsnOrder);
    const seen = await session.run(async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return currentSession();
    });
    expect(seen).to.equal(session);
    expect(currentSession()).to.equal(undefined);
  });
});
