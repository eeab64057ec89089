// Running the real CLI binary (or a shell line) in a child process and collecting what it
// printed: one runner for every end-to-end test, each of which only decides the command
// line and the environment.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `modelkeep` launcher of this checkout. */
export const BIN = fileURLToPath(new URL('../../bin/modelkeep', import.meta.url));

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed (empty by default). */
  input?: string;
  /** Called with all of stderr so far whenever more arrives (prompts, progress). */
  onStderr?: (all: string) => void;
}

/** Starts `command`; `finish` collects its output. For runs a test interrupts. */
export function start(command: string, args: readonly string[], opts: RunOptions = {}): ChildProcess {
  const child = spawn(command, [...args], { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  child.stdin?.on('error', () => {}); // the program may exit before reading stdin
  child.stdin?.end(opts.input ?? '');
  return child;
}

/** Waits for a started child to end, with everything it printed. */
export function finish(child: ChildProcess, onStderr?: (all: string) => void): Promise<Run> {
  return new Promise((done, fail) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      onStderr?.(stderr);
    });
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

/** Runs `command` to its end. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<Run> {
  return finish(start(command, args, opts), opts.onStderr);
}

/** Runs the CLI binary with this Node. */
export function runBin(args: readonly string[], opts: RunOptions = {}): Promise<Run> {
  return run(process.execPath, [BIN, ...args], opts);
}

/** This process's environment without the Modelkeep variables a developer's shell may hold, plus `extra`. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['MODELKEEP_TOKEN', 'MODELKEEP_DATABASE_URL', 'MODELKEEP_DATA_DIR', 'MODELKEEP_SERVER', 'MODELKEEP_CONFIG_DIR']) delete env[k];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== '') env[k] = v;
  return env;
}

export function expectExit(r: Run, code: number, what: string): void {
  assert.equal(r.code, code, `${what}: expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}
