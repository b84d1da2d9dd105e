import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect } from 'chai';

/**
 * The layers of ARCHITECTURE.md, checked: every relative import of lib/ goes to its own layer or
 * one below. Lower numbers are lower layers.
 */
const LAYERS: [RegExp, number, string][] = [
  [/^(config|hashing|security|util)\/|^errors\.ts$|^observability\/state-events\.ts$/, 0, 'foundations'],
  [/^(dialect|knex)\//, 1, 'adapters'],
  [/^(topology|access|resilience)\//, 2, 'nodes'],
  [/^planner\//, 3, 'planning'],
  [/^(engine|replicas|cache|ids|transactions)\//, 4, 'execution'],
  [/^migrations\//, 5, 'migrations'],
  [/^rebalance\//, 6, 'rebalance'],
  [/^kit\//, 7, 'kit'],
  [/./, 8, 'facade'],
];

const layerOf = (file: string) => LAYERS.find(([pattern]) => pattern.test(file))!;
const walk = (folder: string): string[] => readdirSync(folder).flatMap((name) => (statSync(join(folder, name)).isDirectory() ? walk(join(folder, name)) : [join(folder, name)]));

describe('architecture', () => {
  it('imports run downward only', () => {
    const upward: string[] = [];
    const files = walk('lib').filter((file) => file.endsWith('.ts'));
    for (const file of files) {
      const from = relative('lib', file);
      for (const match of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)\.js'/g)) {
        const to = relative('lib', resolve(dirname(file), `${match[1]}.ts`));
        if (layerOf(to)[1] > layerOf(from)[1]) upward.push(`${from} (${layerOf(from)[2]}) imports ${to} (${layerOf(to)[2]})`);
      }
    }
    expect(files.length).to.be.greaterThan(80);
    expect(upward, upward.join('\n')).to.deep.equal([]);
  });

  it('knows knex internals in lib/knex/ only', () => {
    const offenders = walk('lib')
      .filter((file) => file.endsWith('.ts') && !file.startsWith(join('lib', 'knex')))
      .filter((file) => /acquireRawConnection|destroyRawConnection|\.runner\(|\b_query\(|processResponse|client\.pool\b/.test(readFileSync(file, 'utf8')));
    expect(offenders).to.deep.equal([]);
  });
});
