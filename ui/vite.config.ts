// Builds the portal into dist/ui/ (see scripts/build.mjs, run by `npm install`): hashed file names
// under assets/, so Berth can serve them with a year-long cache; index.html is never cached.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // No inline scripts or styles: the portal is served with a strict Content-Security-Policy.
  build: {
    outDir: '../dist/ui',
    emptyOutDir: true,
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
    reportCompressedSize: false,
    chunkSizeWarningLimit: 600,
  },
  oxc: { jsx: { runtime: 'automatic' } },
  logLevel: 'warn',
});
