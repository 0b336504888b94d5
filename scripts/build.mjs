// Bundles Berth's TypeScript sources into dist/berth.mjs (dependencies stay in node_modules), so
// the server runs without compiling TypeScript at start: faster to start, ~60 MiB less memory.
// Runs on `npm install` / `npm ci` (the `prepare` script) and with `npm run build`.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names carry hashes: start empty so old chunks do not pile up.
rmSync('dist', { recursive: true, force: true });

await build({
  entryPoints: ['src/cli/main.ts'],
  // Split at dynamic imports, so what only some configurations need (the AWS SDK for S3) is loaded
  // only by them; the entry stays dist/berth.mjs.
  outdir: 'dist',
  entryNames: 'berth',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
