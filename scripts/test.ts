// `npm test`: type-check, lint, then every test file under Node's test runner.
// Runs under Node >= 22.13 (scripts/launch.mjs sees to that).
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const args = process.argv.slice(2);
const unitOnly = args.includes('--only');
const pick = args.filter((a) => !a.startsWith('--'));

function step(name: string, cmd: string, argv: string[]): void {
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stdout.write(`\n${name} failed\n`);
    process.exit(r.status ?? 1);
  }
}

if (pick.length === 0) {
  step('typecheck', process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.']);
  // The console has its own DOM-typed project (src/web/tsconfig.json).
  step('typecheck console', process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'src/web']);
  step('lint', process.execPath, ['node_modules/@biomejs/biome/bin/biome', 'check', '.']);
}

// The console is served from dist/web: build it when missing or older than src/web
// (a no-op otherwise). The browser tests and the route table test need it.
if (!unitOnly) step('console build', process.execPath, ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', 'scripts/build-web.ts', '--if-stale']);

const patterns = unitOnly ? ['src/**/*.test.ts'] : ['src/**/*.test.ts', 'test/**/*.test.ts'];
const files = pick.length > 0 ? pick : patterns.flatMap((p) => globSync(p)).sort();
if (files.length === 0) {
  process.stdout.write('no test files found\n');
  process.exit(1);
}
step('tests', process.execPath, [
  '--experimental-strip-types',
  '--disable-warning=ExperimentalWarning',
  '--test',
  '--test-concurrency=2',
  '--test-timeout=300000',
  ...files,
]);
