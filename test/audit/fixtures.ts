// Shared pieces of the audit-log tests: where a log lives (a SQLite data dir, or a
// PostgreSQL database plus the data dir that holds the signing key), cheap copies of it
// to tamper with, the real verifier in-process, and the real `bin/modelkeep` CLI.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULT_KEY_FILE, keyIdOf, readDatabaseLog, readWitnessFile, type VerifyResult, verifyLog } from '../../src/audit/index.ts';
import { type Database, type Kysely, openDatabase } from '../../src/storage/index.ts';
import { cleanEnv, type Run, runBin } from '../helpers/cli.ts';
import { type Backend, createPgDatabase, PG_ADMIN_URL } from '../helpers/server.ts';

export type CliResult = Run;

/** Runs the real CLI binary; never inherits a database, data dir or server from the environment. */
export function runCli(args: readonly string[], opts: { configDir?: string; input?: string } = {}): Promise<CliResult> {
  return runBin(args, { env: cleanEnv({ MODELKEEP_CONFIG_DIR: opts.configDir }), ...(opts.input !== undefined ? { input: opts.input } : {}) });
}

export function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** The seq and kind named by `audit log verification FAILED at seq N: <kind>: …`. */
export function namedFailure(r: CliResult): { seq: number; kind: string } | null {
  const m = /audit log verification FAILED at seq (\d+): ([a-z-]+): /.exec(r.stdout);
  return m ? { seq: Number(m[1]), kind: m[2] ?? '' } : null;
}

/** Where one audit log lives. */
export interface Place {
  backend: Backend;
  dataDir: string;
  databaseUrl: string | undefined;
  /** Removes the data dir and the database. */
  drop(): Promise<void>;
}

export async function newPlace(backend: Backend, root: string): Promise<Place> {
  const dataDir = mkdtempSync(join(root, 'data-'));
  const db = backend === 'postgres' ? await createPgDatabase() : null;
  return {
    backend,
    dataDir,
    databaseUrl: db?.url,
    drop: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      await db?.drop();
    },
  };
}

let cloning: Promise<unknown> = Promise.resolve();

/** A copy of a stopped server's log to tamper with: the data dir, and for PostgreSQL a database made from it as a template. */
export function clonePlace(src: Place, root: string): Promise<Place> {
  // One copy at a time: PostgreSQL refuses a template that another CREATE DATABASE is reading.
  const next = cloning.then(() => copyPlace(src, root));
  cloning = next.catch(() => {});
  return next;
}

async function copyPlace(src: Place, root: string): Promise<Place> {
  const dataDir = mkdtempSync(join(root, 'copy-'));
  cpSync(src.dataDir, dataDir, { recursive: true });
  if (!src.databaseUrl) {
    return { backend: src.backend, dataDir, databaseUrl: undefined, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const from = new URL(src.databaseUrl).pathname.slice(1);
  const name = `${from}_c${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${from}`);
  } finally {
    await admin.end();
  }
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    backend: src.backend,
    dataDir,
    databaseUrl: u.toString(),
    drop: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Opens the place's database directly, as an insider with database access would. */
export async function withDb<T>(place: Place, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = await openDatabase({ dataDir: place.dataDir, databaseUrl: place.databaseUrl });
  try {
    return await fn(db.kysely);
  } finally {
    await db.close();
  }
}

export interface Pin {
  publicKey: KeyObject;
  keyId: string;
  /** A PEM file holding the public key, outside the data dir. */
  file: string;
}

/** Pins the key a server created in its data dir, as an auditor would after its first start. */
export function pinKey(dataDir: string, root: string): Pin {
  const publicKey = createPublicKey(createPrivateKey(readFileSync(join(dataDir, DEFAULT_KEY_FILE))));
  const dir = mkdtempSync(join(root, 'pin-'));
  const file = join(dir, 'audit-public-key.pem');
  writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
  return { publicKey, keyId: keyIdOf(publicKey), file };
}

/** The real verifier, in this process, over the place's database. */
export async function verifyPlace(place: Place, pin: Pin, witnessFiles: readonly string[] = []): Promise<VerifyResult> {
  return withDb(place, async (db) => {
    const log = await readDatabaseLog(db);
    return verifyLog({
      events: log.events,
      heads: log.heads,
      storedLeaves: log.storedLeaves,
      publicKey: pin.publicKey,
      keyId: pin.keyId,
      witnesses: witnessFiles.map((f) => ({ source: f, heads: readWitnessFile(f) })),
    });
  });
}

/** `--data-dir DIR` for SQLite, `--database-url URL` for PostgreSQL. */
export function storeArgs(place: Place): string[] {
  return place.databaseUrl ? ['--database-url', place.databaseUrl] : ['--data-dir', place.dataDir];
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function describeResult(r: VerifyResult): string {
  return JSON.stringify(r.ok ? r : { firstBadSeq: r.firstBadSeq, kind: r.kind, message: r.message, failures: r.failures.slice(0, 5) });
}
