// npm run build (and prepare/prepack): compiles lib/ to dist/lib/ (ESM JavaScript with
// declarations) from a clean folder, so no stale file of a removed module ships.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
