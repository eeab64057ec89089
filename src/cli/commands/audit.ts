// `audit events`, `audit verify` and `audit export`.

import { createPrivateKey, createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { AuditEvent, TreeHead, VerifyResult, WitnessHeads } from '../../audit/index.ts';
import type { ApiClient } from '../client.ts';
import { type CommandContext, type CommandDef, optList, optString } from '../command.ts';
import { configDir, normalizeServer } from '../credentials.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { col, note, print, printList, renderJson, safeText } from '../output.ts';
import { checkName, parseNonNegativeInt, parsePositiveInt } from '../refs.ts';
import { signedInClient } from '../session.ts';

export const auditEvents: CommandDef = {
  path: ['audit', 'events'],
  summary: 'list audit events',
  usage: '[--project P] [--after SEQ] [--limit N]',
  description: 'Events come oldest first; page with --after set to the last sequence number you saw.',
  examples: ['modelkeep audit events --project fraud --limit 50', 'modelkeep audit events --after 1200 --json'],
  positionals: { min: 0, max: 0 },
  options: {
    project: { type: 'string', short: 'p', valueName: 'P', description: 'only events about this project' },
    after: { type: 'string', valueName: 'SEQ', description: 'only events after this sequence number' },
    limit: { type: 'string', valueName: 'N', description: 'at most this many events' },
  },
  async run(ctx) {
    const project = optString(ctx, 'project');
    const after = optString(ctx, 'after');
    const limit = optString(ctx, 'limit');
    const query = {
      project: project === undefined ? undefined : checkName(project, 'project'),
      after: after === undefined ? undefined : parseNonNegativeInt(after, '--after'),
      limit: limit === undefined ? undefined : parsePositiveInt(limit, '--limit'),
    };
    const client = await signedInClient(ctx);
    printList(ctx.io, ctx.json, await client.json('GET', '/v1/audit/events', { query }), 'events', [
      col('SEQ', 'seq'),
      col('TIME', 'time'),
      col('ACTOR', 'actor'),
      col('ACTION', 'action'),
      col('RESOURCE', 'resource'),
      col('OUTCOME', 'outcome'),
      col('REASON', 'reason'),
    ]);
    return EXIT.ok;
  },
};

// ---------------------------------------------------------------------------------------
// audit verify

/** The largest page /v1/audit/events serves. */
const EVENTS_PAGE = 1000;

interface PinnedKey {
  publicKey: KeyObject;
  keyId: string;
  /** Where the key came from, for the report. */
  source: string;
  pinned: boolean;
}

function readPublicKeyFile(file: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch {
    throw usageError(`cannot read the public key file ${file}`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw usageError(`${file} does not hold a PEM public key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw usageError(`${file} is not an Ed25519 key`);
  return key;
}

function readWitnesses(files: readonly string[], readWitnessFile: (f: string) => TreeHead[]): WitnessHeads[] {
  return files.map((file) => {
    // a mistyped path must not silently mean "no witness"
    if (!existsSync(file)) throw usageError(`witness file ${file} does not exist`);
    try {
      return { source: file, heads: readWitnessFile(file) };
    } catch (err) {
      throw new CliError(`witness file ${file} is not a tree-heads.jsonl file: ${err instanceof Error ? err.message : String(err)}`, EXIT.failure);
    }
  });
}

type Report = VerifyResult & { mode: 'offline' | 'online'; keyPinned: boolean; keySource: string };

function keyMismatch(summaryKeyId: string, message: string): VerifyResult {
  return {
    ok: false,
    firstBadSeq: 1,
    kind: 'unknown-key',
    message,
    failures: [{ seq: 1, kind: 'unknown-key', message }],
    events: 0,
    lastSeq: 0,
    heads: 0,
    witnessHeads: 0,
    latestHead: null,
    verifiedSize: 0,
    unsignedEvents: 0,
    keyId: summaryKeyId,
  };
}

async function verifyOffline(ctx: CommandContext, pinnedFile: string | undefined, witnessFiles: readonly string[]): Promise<Report> {
  const audit = await import('../../audit/index.ts');
  const { openDatabase } = await import('../../storage/index.ts');
  const databaseUrl = optString(ctx, 'database-url') ?? (ctx.env.MODELKEEP_DATABASE_URL || undefined);
  const dataDir = optString(ctx, 'data-dir') ?? (ctx.env.MODELKEEP_DATA_DIR || './data');
  if (!databaseUrl && !existsSync(join(dataDir, 'modelkeep.db'))) {
    throw usageError(`no Modelkeep database in ${dataDir}`, 'pass --data-dir DIR, or --database-url postgres://… for PostgreSQL');
  }
  let key: PinnedKey;
  if (pinnedFile !== undefined) {
    const publicKey = readPublicKeyFile(pinnedFile);
    key = { publicKey, keyId: audit.keyIdOf(publicKey), source: pinnedFile, pinned: true };
  } else {
    const file = join(dataDir, audit.DEFAULT_KEY_FILE);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(createPrivateKey(readFileSync(file)));
    } catch {
      throw usageError(`no --public-key given and no audit signing key at ${file}`, 'pass --public-key FILE (the PEM from GET /v1/audit/public-key)');
    }
    key = { publicKey, keyId: audit.keyIdOf(publicKey), source: resolve(file), pinned: false };
  }
  const witnesses = readWitnesses(witnessFiles, audit.readWitnessFile);
  // Read-only: verifying a log (or a forensic copy of one) never migrates or writes it.
  const db = await openDatabase({ dataDir, databaseUrl, readOnly: true });
  try {
    const log = await audit.readDatabaseLog(db.kysely);
    const result = await audit.verifyLog({
      events: log.events,
      heads: log.heads,
      storedLeaves: log.storedLeaves,
      publicKey: key.publicKey,
      keyId: key.keyId,
      witnesses,
    });
    return { ...result, mode: 'offline', keyPinned: key.pinned, keySource: key.source };
  } finally {
    await db.close();
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Pages through GET /v1/audit/events until `target` events are read or the log ends. */
async function* serverEvents(client: ApiClient, target: number): AsyncGenerator<AuditEvent> {
  let after = 0;
  for (;;) {
    const body = await client.json('GET', '/v1/audit/events', { query: { after, limit: EVENTS_PAGE } });
    const events = isObject(body) && Array.isArray(body.events) ? (body.events as unknown[]) : null;
    if (!events) throw new CliError('the server answered /v1/audit/events without an events list', EXIT.failure);
    for (const e of events) {
      if (!isObject(e) || typeof e.seq !== 'number') throw new CliError('the server sent an audit event without a seq', EXIT.failure);
      yield e as unknown as AuditEvent;
      after = e.seq;
    }
    // Reading the log is itself audited, so it grows while we read: stop at the signed size.
    if (events.length < EVENTS_PAGE || after >= target) return;
  }
}

// Trust on first use: the key an online verify first saw for a server is kept, and a later
// run without --public-key checks the server against it (a swapped key is then caught).
interface KnownKeys {
  version: 1;
  servers: Record<string, { keyId: string; publicKeyPem: string; pinnedAt: string }>;
}

function knownKeysFile(ctx: Pick<CommandContext, 'env'>): string {
  return join(configDir(ctx.env), 'audit-keys.json');
}

async function readKnownKeys(file: string): Promise<KnownKeys> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { version: 1, servers: {} };
  }
  try {
    const parsed = JSON.parse(text) as KnownKeys;
    if (parsed.version === 1 && isObject(parsed.servers)) return parsed;
  } catch {
    // fall through
  }
  throw new CliError(`${file} is damaged`, EXIT.failure, 'restore it, or delete it and pin the key with --public-key');
}

async function saveKnownKeys(file: string, keys: KnownKeys): Promise<void> {
  const dir = join(file, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.audit-keys.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(keys, null, 2)}\n`, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function verifyOnline(ctx: CommandContext, rawUrl: string, pinnedFile: string | undefined, witnessFiles: readonly string[]): Promise<Report> {
  const audit = await import('../../audit/index.ts');
  const server = normalizeServer(rawUrl, ctx.env);
  const witnesses = readWitnesses(witnessFiles, audit.readWitnessFile);
  const pinned = pinnedFile === undefined ? null : readPublicKeyFile(pinnedFile);
  const client = await signedInClient({ ...ctx, server });

  const info = await client.json('GET', '/v1/audit/public-key');
  if (!isObject(info) || typeof info.publicKeyPem !== 'string') throw new CliError('the server sent no audit public key', EXIT.failure);
  let serverKey: KeyObject;
  try {
    serverKey = createPublicKey(info.publicKeyPem);
  } catch {
    throw new CliError('the server sent an audit public key that is not a PEM public key', EXIT.failure);
  }
  const serverKeyId = audit.keyIdOf(serverKey);
  let key: PinnedKey;
  if (pinned) {
    key = { publicKey: pinned, keyId: audit.keyIdOf(pinned), source: pinnedFile ?? '', pinned: true };
  } else {
    const file = knownKeysFile(ctx);
    const known = await readKnownKeys(file);
    const seen = known.servers[server];
    if (seen) {
      let publicKey: KeyObject;
      try {
        publicKey = createPublicKey(seen.publicKeyPem);
      } catch {
        throw new CliError(`${file} holds a damaged key for ${server}`, EXIT.failure);
      }
      key = { publicKey, keyId: audit.keyIdOf(publicKey), source: `${file}, first seen ${seen.pinnedAt}`, pinned: true };
    } else {
      known.servers[server] = { keyId: serverKeyId, publicKeyPem: serverKey.export({ type: 'spki', format: 'pem' }).toString(), pinnedAt: new Date().toISOString() };
      await saveKnownKeys(file, known);
      key = { publicKey: serverKey, keyId: serverKeyId, source: `the server on first fetch, now saved in ${file}`, pinned: false };
    }
  }
  const base = { mode: 'online' as const, keyPinned: key.pinned, keySource: key.source };
  if (key.keyId !== serverKeyId) {
    // the server now signs with another key than the one the auditor holds
    return { ...keyMismatch(key.keyId, `the server's tree-head key ${serverKeyId.slice(0, 12)}… is not the pinned key ${key.keyId.slice(0, 12)}…`), ...base };
  }

  const headsBody = await client.json('GET', '/v1/audit/tree-heads');
  if (!isObject(headsBody) || !Array.isArray(headsBody.treeHeads)) throw new CliError('the server sent no tree heads', EXIT.failure);
  const heads = headsBody.treeHeads as TreeHead[];
  const target = Math.max(0, ...heads.map((h) => (isObject(h) && typeof h.treeSize === 'number' ? h.treeSize : 0)));
  const result = await audit.verifyLog({ events: serverEvents(client, target), heads, publicKey: key.publicKey, keyId: key.keyId, witnesses });
  if (!result.ok) return { ...result, ...base };

  // The latest head must extend the first: the server proves it from its stored tree.
  const valid = heads.filter((h) => h.treeSize > 0 && audit.verifyTreeHead(h, key.publicKey, key.keyId)).sort((a, b) => a.treeSize - b.treeSize);
  const first = valid[0];
  const latest = valid[valid.length - 1];
  if (first && latest && first.treeSize < latest.treeSize) {
    const body = await client.json('GET', '/v1/audit/proofs/consistency', { query: { first: first.treeSize, second: latest.treeSize } });
    const proof = isObject(body) && Array.isArray(body.proof) ? body.proof : [];
    const hashes = proof.map((p) => Buffer.from(typeof p === 'string' && /^[0-9a-f]{64}$/.test(p) ? p : '', 'hex'));
    const ok = audit.merkle.verifyConsistency(first.treeSize, latest.treeSize, Buffer.from(first.rootHash, 'hex'), Buffer.from(latest.rootHash, 'hex'), hashes);
    if (!ok) {
      const message = `the server's consistency proof from size ${first.treeSize} to ${latest.treeSize} does not verify: its stored tree does not extend the first signed head`;
      const failure = { seq: first.treeSize + 1, kind: 'fork' as const, message };
      return { ...result, ok: false, firstBadSeq: failure.seq, kind: failure.kind, message, failures: [failure], ...base };
    }
  }
  return { ...result, ...base };
}

function describe(r: Report): string {
  const latest = r.latestHead
    ? `latest signed size ${r.latestHead.treeSize} at ${safeText(r.latestHead.timestamp)}, root ${r.latestHead.rootHash.slice(0, 16)}…`
    : 'no signed tree head';
  const key = r.keyPinned ? `key ${r.keyId} (pinned: ${safeText(r.keySource)})` : `key ${r.keyId} (NOT pinned: taken from ${safeText(r.keySource)})`;
  return `${r.events} events, ${r.heads} tree heads (${latest}), ${r.witnessHeads} witness heads; ${key}`;
}

export const auditVerify: CommandDef = {
  path: ['audit', 'verify'],
  summary: 'check that no audit event was edited, deleted, reordered or cut off',
  usage: '(--data-dir DIR | --database-url URL | --url URL) [--public-key FILE] [--witness FILE]…',
  description:
    'Recomputes every Merkle leaf from the events and the root at every signed tree head, checks each head\n' +
    'against the pinned Ed25519 key, and compares witness copies of the heads (tree-heads.jsonl files).\n' +
    'Offline it reads the database (--data-dir for SQLite, --database-url or $MODELKEEP_DATABASE_URL for\n' +
    'PostgreSQL) read-only, as it finds it: a log, or a copy of one, is never migrated or written. Online\n' +
    '(--url) it reads the API with your saved session (a platform-wide audit reader) and also checks the\n' +
    'server’s consistency proof from the first to the latest head.\n' +
    'Pin the key with --public-key: without it the key is taken from the data folder (offline) or from the\n' +
    'server (online), and the report says it was not pinned.\n' +
    'Exit 0 only when everything checks out; on tampering it prints\n' +
    '`audit log verification FAILED at seq N: <kind>: <message>` and exits 7.',
  examples: [
    'modelkeep audit verify --data-dir /var/lib/modelkeep --public-key audit-key.pem --witness /mnt/witness/tree-heads.jsonl',
    'modelkeep audit verify --url https://modelkeep.example.com --public-key audit-key.pem',
  ],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: {
    'data-dir': { type: 'string', valueName: 'DIR', description: 'data folder of the server (default: $MODELKEEP_DATA_DIR, else ./data)' },
    'database-url': { type: 'string', valueName: 'URL', description: 'postgres://… database (default: $MODELKEEP_DATABASE_URL)' },
    url: { type: 'string', valueName: 'URL', description: 'verify a running server through its API instead' },
    'public-key': { type: 'string', valueName: 'FILE', description: 'the tree-head public key (PEM) to pin' },
    witness: { type: 'string', multiple: true, valueName: 'FILE', description: 'a witness tree-heads.jsonl (repeatable)' },
  },
  async run(ctx) {
    const url = optString(ctx, 'url');
    const pinnedFile = optString(ctx, 'public-key');
    const witnessFiles = optList(ctx, 'witness');
    if (url !== undefined && (optString(ctx, 'data-dir') !== undefined || optString(ctx, 'database-url') !== undefined)) {
      throw usageError('--url verifies through the API: do not combine it with --data-dir or --database-url');
    }
    const report = url === undefined ? await verifyOffline(ctx, pinnedFile, witnessFiles) : await verifyOnline(ctx, url, pinnedFile, witnessFiles);
    if (ctx.json) {
      print(ctx.io, renderJson(report));
    } else if (report.ok) {
      print(ctx.io, `audit log verified: ${describe(report)}\n`);
    } else {
      print(ctx.io, `audit log verification FAILED at seq ${report.firstBadSeq}: ${report.kind}: ${safeText(report.message)}\n`);
      for (const f of report.failures.slice(1, 6)) print(ctx.io, `  also at seq ${f.seq}: ${f.kind}: ${safeText(f.message)}\n`);
      print(ctx.io, `checked: ${describe(report)}\n`);
    }
    if (!report.keyPinned) {
      note(ctx.io, `note: the tree-head key was not pinned (taken from ${safeText(report.keySource)}); pass --public-key FILE to pin it`);
    }
    if (report.ok && report.unsignedEvents > 0) {
      note(ctx.io, `note: ${report.unsignedEvents} events after tree size ${report.verifiedSize} are not covered by a signed tree head yet`);
    }
    return report.ok ? EXIT.ok : EXIT.auditVerifyFailed;
  },
};

// ---------------------------------------------------------------------------------------
// audit export

function write(out: Writable, text: string): Promise<void> {
  return new Promise((done, fail) => {
    out.write(text, (err) => (err ? fail(err) : done()));
  });
}

export const auditExport: CommandDef = {
  path: ['audit', 'export'],
  summary: 'export audit events as JSON lines (for a SIEM)',
  usage: '[--format jsonl] [--after SEQ] [--out FILE]',
  description:
    'Streams every event after --after (default: from the start), one JSON object per line with its\n' +
    'Merkle `leafIndex` (seq - 1), oldest first, page by page. Needs a platform-wide audit reader.',
  examples: ['modelkeep audit export --format jsonl --out audit.jsonl', 'modelkeep audit export --after 1200 | siem-ingest'],
  positionals: { min: 0, max: 0 },
  options: {
    format: { type: 'string', valueName: 'FORMAT', description: 'output format: jsonl (the default and only one)' },
    after: { type: 'string', valueName: 'SEQ', description: 'only events after this sequence number' },
    out: { type: 'string', short: 'o', valueName: 'FILE', description: 'write to this file (created 0600) instead of stdout' },
  },
  async run(ctx) {
    const format = optString(ctx, 'format') ?? 'jsonl';
    if (format !== 'jsonl') throw usageError(`unsupported format '${format}'`, 'use --format jsonl');
    const afterFlag = optString(ctx, 'after');
    let after = afterFlag === undefined ? 0 : parseNonNegativeInt(afterFlag, '--after');
    const outFile = optString(ctx, 'out');
    const client = await signedInClient(ctx);
    const out: Writable = outFile === undefined ? ctx.io.stdout : createWriteStream(outFile, { flags: 'w', mode: 0o600 });
    let count = 0;
    try {
      for (;;) {
        const body = await client.json('GET', '/v1/audit/events', { query: { after, limit: EVENTS_PAGE } });
        const events = isObject(body) && Array.isArray(body.events) ? (body.events as unknown[]) : null;
        if (!events) throw new CliError('the server answered /v1/audit/events without an events list', EXIT.failure);
        let chunk = '';
        for (const e of events) {
          if (!isObject(e) || typeof e.seq !== 'number' || e.seq <= after) throw new CliError('the server sent audit events out of order', EXIT.failure);
          chunk += `${JSON.stringify({ leafIndex: e.seq - 1, ...e })}\n`;
          after = e.seq;
          count++;
        }
        if (chunk !== '') await write(out, chunk);
        if (events.length < EVENTS_PAGE) break;
      }
    } finally {
      if (out !== ctx.io.stdout) await new Promise<void>((done) => out.end(done));
    }
    note(ctx.io, `exported ${count} events${outFile === undefined ? '' : ` to ${outFile}`}`);
    return EXIT.ok;
  },
};
