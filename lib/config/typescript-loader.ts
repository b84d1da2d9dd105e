/**
 * TypeScript configs and migrations for plain Node: when a .ts (.mts, .cts) file must be loaded
 * and the process cannot load TypeScript itself (it was not started under tsx, ts-node or Node's
 * type stripping), tsx's loader is registered once, for the rest of the process, for ES modules
 * and CommonJS alike. Nothing is registered for JavaScript files, so the compiled CLI and
 * library load only what they ship.
 */
import { pathToFileURL } from 'node:url';

const TYPESCRIPT_FILE = /\.[cm]?tsx?$/;

let registered: Promise<void> | undefined;

export function isTypeScriptFile(path: string): boolean {
  return TYPESCRIPT_FILE.test(path);
}

/** Makes .ts files loadable by import() and require() from now on, if they are not yet. */
export function ensureTypeScript(): Promise<void> {
  if (processLoadsTypeScript()) return Promise.resolve();
  registered ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register();
    cjs.register();
  });
  return registered;
}

/** import() of a file path, TypeScript included. */
export async function importFile(path: string): Promise<Record<string, unknown>> {
  if (isTypeScriptFile(path)) await ensureTypeScript();
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
}

function processLoadsTypeScript(): boolean {
  const flags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return /\btsx\b|ts-node|--experimental-strip-types|--experimental-transform-types/.test(flags) || (process.features as { typescript?: unknown }).typescript !== undefined;
}
