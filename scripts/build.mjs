// Bundles Berth's TypeScript sources into dist/berth.mjs (dependencies stay in node_modules), so
// the server runs without compiling TypeScript at start: faster to start, ~60 MiB less memory.
// Runs on `npm install` / `npm ci` (the `prepare` script) and with `npm run build`.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/berth.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
