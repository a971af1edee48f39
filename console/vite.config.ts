// The call console's build: `npm run build:console` (console/ → dist/console-ui, served by
// the bridge at /console: src/console/static-routes.ts). Not dist/console: tsc writes
// src/console's modules there, and this build empties its output directory.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/console-ui', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    // Everything in files (the page's CSP allows no inline script, style or data: fonts).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
