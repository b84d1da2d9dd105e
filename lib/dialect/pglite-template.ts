/**
 * A freshly initialised PGlite data directory, made once and reused. Creating a new PGlite
 * database runs initdb inside WASM (3-6 s here); loading a dump of a fresh one takes under 1 s.
 * The dump is kept in memory for this process and on disk in the user's cache folder, keyed
 * by the PGlite version, so that four embedded shards start in seconds, not a minute.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';

let template: Promise<Blob> | undefined;

export function freshPgliteDump(PGliteClass: typeof PGlite): Promise<Blob> {
  template ??= loadOrCreate(PGliteClass);
  return template;
}

async function loadOrCreate(PGliteClass: typeof PGlite): Promise<Blob> {
  const file = await cacheFile();
  try {
    return new Blob([await readFile(file)]);
  } catch {
    // Not cached yet: make one below.
  }
  const db = new PGliteClass();
  await db.waitReady;
  const dump = await db.dumpDataDir('none');
  await db.close();
  await saveQuietly(file, dump);
  return dump;
}

/** The cache is an optimisation: a read-only home or a full disk only costs time. */
async function saveQuietly(file: string, dump: Blob): Promise<void> {
  const partial = `${file}.${process.pid}.partial`;
  try {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(partial, new Uint8Array(await dump.arrayBuffer()));
    await rename(partial, file);
  } catch {
    // Ignored on purpose, see above.
  }
}

async function cacheFile(): Promise<string> {
  const root = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(root, 'shardkit', `pglite-${await pgliteVersion()}-fresh.tar`);
}

async function pgliteVersion(): Promise<string> {
  let folder = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  while (folder !== dirname(folder)) {
    try {
      const manifest = JSON.parse(await readFile(join(folder, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === '@electric-sql/pglite' && manifest.version) return manifest.version;
    } catch {
      // No package.json at this level: keep walking up.
    }
    folder = dirname(folder);
  }
  return 'unknown';
}
