// Builds what Berth serves and runs, into dist/ (ignored by git; run by `npm install` / `npm ci`
// through the `prepare` script, and by `npm run build`):
// - dist/berth.mjs: Berth's TypeScript sources bundled (dependencies stay in node_modules), so the
//   server runs without compiling TypeScript at start: faster to start, ~60 MiB less memory;
// - dist/ui/: the web portal (ui/, React + Vite), with a .br and a .gz beside each text file, so
//   the server sends compressed bytes without compressing them on every request.
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
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

const { build: viteBuild } = await import('vite');
await viteBuild({ configFile: 'ui/vite.config.ts' });

function compressTree(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      compressTree(path);
    } else if (/\.(js|css|html|json|svg|txt)$/.test(name)) {
      const data = readFileSync(path);
      writeFileSync(`${path}.br`, brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } }));
      writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }));
    }
  }
}
compressTree('dist/ui');
