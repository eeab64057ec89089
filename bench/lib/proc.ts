// Child processes for the benchmark: every child is tracked and killed when the
// harness exits, fails or is interrupted, so a failed run never leaves a server behind.
import { type ChildProcess, fork, type SpawnOptions, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const children = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];

/** Registers a synchronous cleanup step (temp dirs) run once at exit, after the children are killed. */
export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

let cleaned = false;
export function cleanupNow(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
  for (const fn of cleanups.reverse()) {
    try {
      fn();
    } catch {
      // best effort: never mask the original failure
    }
  }
}

process.on('exit', cleanupNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    cleanupNow();
    process.exit(130);
  });
}

/** Path of a sibling script of bench/ (children run the same Node with the same flags). */
export function benchScript(name: string): string {
  return fileURLToPath(new URL(`../${name}`, import.meta.url));
}

/** The Node flags this process runs with (type stripping), for children to inherit. */
export function nodeFlags(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--inspect'));
}

/** The "ready" message of a server child (server-child.ts, bare-child.ts, file-child.ts). */
export interface ServerReady {
  type: 'ready';
  url: string;
  pid: number;
}

export interface Forked<M> {
  child: ChildProcess;
  pid: number;
  /** The first IPC message the child sends (its "ready" report). */
  ready: Promise<M>;
  /** Resolves when the child has exited. */
  exited: Promise<number | null>;
  /** Asks the child to stop gracefully; kills it after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Forks a bench script with an IPC channel (the child exits when the channel closes). */
export function forkScript<M>(script: string, args: string[], opts: { stdio?: 'inherit' | 'pipe' } = {}): Forked<M> {
  const child = fork(benchScript(script), args, {
    execArgv: nodeFlags(),
    stdio: opts.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  children.add(child);
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  const pid = child.pid;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  const ready = new Promise<M>((resolve, reject) => {
    child.once('message', (m) => resolve(m as M));
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`${script} exited (code ${code}) before it was ready`)));
  });
  ready.catch(() => {});
  return {
    child,
    pid,
    ready,
    exited,
    stop: async (graceMs = 5000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Spawns a command (no IPC) that is killed with the others if the harness exits first. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, opts);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS), or null. */
export function readRss(pid: number): number | null {
  return readStatusKb(pid, 'VmRSS');
}

/** The kernel's high-water mark of the resident set (VmHWM) in bytes, or null. */
export function readHwm(pid: number): number | null {
  return readStatusKb(pid, 'VmHWM');
}

function readStatusKb(pid: number, field: string): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m?.[1] ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resets the kernel's peak-RSS counter (VmHWM) of a process; false when not permitted. */
export function resetHwm(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU time a process has used (user + system, all its threads) in µs, from
 * /proc/<pid>/stat (clock ticks of 1/100 s: USER_HZ), or null where that is not readable.
 */
export function processCpuUs(pid: number): number | null {
  try {
    // Fields after the command name, which ends with ") ": utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * 10_000 : null;
  } catch {
    return null;
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat (all CPUs together). */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/**
 * How busy the machine is, in cores, over `ms` while this harness is idle: anything
 * above ~0.1 is another workload competing with the measurement. Null off Linux.
 */
export async function machineLoad(ms: number, cores: number): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return null;
  return ((b.busy - a.busy) / (b.total - a.total)) * cores;
}
