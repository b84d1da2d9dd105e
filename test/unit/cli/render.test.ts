import { expect } from 'chai';
import { renderStatus } from '../../../lib/cli/status-command.js';
import { renderTable } from '../../../lib/cli/render-table.js';
import type { KitStatus } from '../../../lib/index.js';

const status: KitStatus = {
  shards: [
    { shard: 'pg-a', weight: 1, standby: false, slots: 522_008 },
    { shard: 'pg-b', weight: 1, standby: false, slots: 526_568 },
  ],
  nodes: [
    { shard: 'pg-a', node: 'pg-a-primary', role: 'primary', where: 'postgres://shardkit@127.0.0.1:54411/shardkit', breaker: 'closed', inFlight: 0, limit: 10, queued: 0, shed: 0, health: 'up' },
    {
      shard: 'pg-a',
      node: 'pg-a-replica1',
      role: 'replica',
      where: 'postgres://shardkit@127.0.0.1:54412/shardkit',
      breaker: 'closed',
      inFlight: 0,
      limit: 10,
      queued: 0,
      shed: 0,
      health: 'up',
      lagMs: 99,
      readingAgeMs: 97,
      problem: 'the primary is down: lag frozen at its last proof',
    },
    { shard: 'pg-b', node: 'pg-b-primary', role: 'primary', where: 'postgres://shardkit@127.0.0.1:54421/shardkit', breaker: 'open', inFlight: 3, limit: 10, queued: 12, shed: 4, health: 'stalled', problem: 'node pg-b-primary of shard pg-b did not answer within 2000 ms (running the statement)' },
  ],
  migrations: [{ name: 'users_v2', phase: 'backfill', version: 3 }],
};

describe('CLI output at a terminal width', () => {
  for (const width of [80, 100, 140]) {
    it(`status fits ${width} columns and keeps every node, its health and its note`, () => {
      const text = renderStatus(status, width);
      const tooWide = text.split('\n').filter((line) => line.length > width);
      expect(tooWide, tooWide.join('\n')).to.deep.equal([]);
      for (const node of status.nodes) expect(text).to.include(node.node);
      expect(text).to.match(/pg-b-primary\s+primary\s+stalled/);
      for (const words of ['the primary is down', 'did not answer within']) expect(text.replace(/\s+/g, ' ')).to.include(words);
    });
  }

  it('at 140 columns shows the columns 80 columns hide', () => {
    expect(renderStatus(status, 140)).to.include('reading age ms');
    expect(renderStatus(status, 200)).to.include('postgres://shardkit@127.0.0.1:54411/shardkit');
    expect(renderStatus(status, 80)).to.include('hidden to fit 80 columns; --json shows all');
  });

  it('aligns numbers right and leaves a table alone when it fits', () => {
    expect(renderTable(['shard', 'users'], [['a', 5], ['bb', 1234]], 80)).to.equal(['shard  users', '-----  -----', 'a          5', 'bb      1234'].join('\n'));
  });
});
