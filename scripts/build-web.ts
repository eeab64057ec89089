// `npm run build:web`: builds the console (src/web) with Vite into dist/web.
// `--if-stale` skips the build when dist/web is newer than every source file, so
// `npm start` and `npm test` can call it on every run (a clean clone builds once).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';

const repo = join(import.meta.dirname, '..');
const src = join(repo, 'src', 'web');
const out = join(repo, 'dist', 'web');
const stamp = join(out, 'index.html');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const deps = [join(repo, 'package-lock.json'), join(repo, 'scripts', 'build-web.ts')];
const sourceTime = Math.max(newestSource(src), ...deps.map((f) => statSync(f).mtimeMs));
if (process.argv.includes('--if-stale') && existsSync(stamp) && statSync(stamp).mtimeMs >= sourceTime) {
  process.stdout.write('console build is up to date (dist/web)\n');
  process.exit(0);
}

await build({
  root: src,
  configFile: false,
  logLevel: 'warn',
  base: '/',
  build: {
    outDir: out,
    emptyOutDir: true,
    assetsDir: 'assets',
    // No inline scripts or styles: the page runs under a strict CSP (script-src 'self').
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
    reportCompressedSize: false,
  },
});
process.stdout.write(`console built into ${out}\n`);
