/**
 * knex migrations from a folder of .ts/.js/.mjs files, loaded with import(). A migration is
 * recorded under its file name without extension, so a project that later compiles its
 * migrations to JavaScript keeps its history.
 */
import { readdir } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

const MIGRATION_FILE = /^(?!.*\.d\.ts$).*\.(ts|mts|js|mjs)$/;

export class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  private readonly directory: string;

  constructor(directory: string) {
    this.directory = resolve(directory);
  }

  async getMigrations(): Promise<string[]> {
    const files = (await readdir(this.directory)).filter((file) => MIGRATION_FILE.test(file)).sort();
    return files;
  }

  getMigrationName(file: string): string {
    return basename(file, extname(file));
  }

  async getMigration(file: string): Promise<Knex.Migration> {
    return (await import(pathToFileURL(join(this.directory, file)).href)) as Knex.Migration;
  }
}
