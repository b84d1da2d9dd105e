// npm run bench loads the library as it ships: imports of lib/*.ts resolve to the built
// dist/lib/*.js (npm run build, which the bench script runs first). Under tsx, lib/ itself would
// run as esbuild turns it out, with a helper call naming every closure made (keepNames): ~10% of
// the kit's CPU per routed read that no user pays. The benchmarks and their helpers stay
// TypeScript under tsx; everything they import from lib/ is one copy, the built one.
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const LIB = new URL('../lib/', import.meta.url).href;
const DIST = new URL('../dist/lib/', import.meta.url).href;

// This file is also the hooks module, loaded again on the hooks thread.
if (isMainThread) register(import.meta.url);

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (!result.url.startsWith(LIB) || !result.url.endsWith('.ts')) return result;
  return { ...result, url: `${DIST}${result.url.slice(LIB.length, -'.ts'.length)}.js`, format: 'module' };
}
