// MC-AUD-04 — signed-tree-head forgery or equivocation. Over a real log and its real
// heads, the verifier is given heads with an invalid signature, an unknown key id, a
// timestamp older than the previous head, the same size with a different root, and a
// smaller size after a larger one — in the log's own list and in a witness's — and rejects
// each, naming the kind; the forgeries written into the database (or a witness file) make
// the real CLI exit 7.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type AuditEvent,
  eventLeafHash,
  keyIdOf,
  LogFrontier,
  loadSigningKey,
  readDatabaseLog,
  type SigningKey,
  signTreeHead,
  type TreeHead,
  type VerifyResult,
  verifyLog,
  type WitnessHeads,
} from '../../src/audit/index.ts';
import {
  clonePlace,
  describeResult,
  namedFailure,
  newPlace,
  type Pin,
  type Place,
  pinKey,
  runCli,
  show,
  storeArgs,
  tempRoot,
  withDb,
} from '../audit/fixtures.ts';
import { BACKENDS, expectOk, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`MC-AUD-04 forged and equivocating tree heads (${backend})`, () => {
    let root = '';
    let place: Place | undefined;
    let pin: Pin;
    let key: SigningKey;
    let heads: TreeHead[] = [];
    const events: AuditEvent[] = [];

    before(async () => {
      root = tempRoot('mk-aud04-');
      place = await newPlace(backend, root);
      const w = await world(backend, {
        dataDir: place.dataDir,
        ...(place.databaseUrl ? { databaseUrl: place.databaseUrl } : {}),
        config: { audit: { treeHeadIntervalMs: 3_600_000 } },
      });
      try {
        for (const name of ['a', 'b']) {
          assert.ok(await w.server.services.auditTree.signNow());
          await expectOk(await w.as['ml-engineer'].post('/v1/projects/fraud/models', { name }));
          await expectOk(await w.admin.post('/v1/projects', { name: `p-${name}` }));
        }
      } finally {
        await w.server.close();
      }
      pin = pinKey(place.dataDir, root);
      key = loadSigningKey({ dataDir: place.dataDir });
      await withDb(place, async (db) => {
        const log = await readDatabaseLog(db);
        heads = log.heads;
        for await (const e of log.events) if (!('unreadable' in e)) events.push(e);
      });
      // the offline bootstrap of `admin` signs a first head; the three signed here come last
      heads = heads.slice(-3);
      assert.equal(heads.length, 3);
      assert.ok(heads[1]!.treeSize - heads[0]!.treeSize >= 2);
    });
    after(async () => {
      await place?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    const rootAt = (size: number): string => {
      const f = new LogFrontier();
      for (const e of events.slice(0, size)) f.append(eventLeafHash(e));
      return f.root().toString('hex');
    };
    const sign = (h: Omit<TreeHead, 'signature' | 'keyId'>, k: SigningKey | { privateKey: SigningKey['privateKey']; keyId: string } = key): TreeHead =>
      signTreeHead({ ...h, keyId: k.keyId }, k.privateKey);
    const foreignKey = () => {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      return { privateKey, keyId: keyIdOf(publicKey) };
    };
    const verify = (list: readonly TreeHead[], witnesses: WitnessHeads[] = []): Promise<VerifyResult> =>
      verifyLog({ events, heads: list, publicKey: pin.publicKey, keyId: pin.keyId, witnesses });
    const expectRejected = async (list: readonly TreeHead[], kind: string, seq: number, witnesses: WitnessHeads[] = []) => {
      const r = await verify(list, witnesses);
      assert.equal(r.ok, false, `accepted: ${describeResult(r)}`);
      if (!r.ok) assert.deepEqual([r.kind, r.firstBadSeq], [kind, seq], describeResult(r));
    };
    const h = (i: number) => heads[i]!;

    test('the genuine heads verify, in the log and as a witness', async () => {
      const r = await verify(heads, [{ source: 'witness', heads }]);
      assert.ok(r.ok, describeResult(r));
      assert.equal(r.verifiedSize, h(2).treeSize);
    });

    test('a head with an invalid signature is rejected', async () => {
      const sig = Buffer.from(h(2).signature, 'base64');
      sig[10] = (sig[10] ?? 0) ^ 1;
      await expectRejected([h(0), h(1), { ...h(2), signature: sig.toString('base64') }], 'bad-signature', h(1).treeSize + 1);
      // a changed root under the old signature is the same thing
      await expectRejected([h(0), h(1), { ...h(2), rootHash: randomBytes(32).toString('hex') }], 'bad-signature', h(1).treeSize + 1);
      // and a head signed by another key that claims the pinned key id
      const other = foreignKey();
      const claimed = signTreeHead({ treeSize: h(2).treeSize, rootHash: h(2).rootHash, timestamp: h(2).timestamp, keyId: pin.keyId }, other.privateKey);
      await expectRejected([h(0), h(1), claimed], 'bad-signature', h(1).treeSize + 1);
    });

    test('a head under an unknown key id is rejected', async () => {
      const forged = sign({ treeSize: h(2).treeSize, rootHash: h(2).rootHash, timestamp: h(2).timestamp }, foreignKey());
      await expectRejected([h(0), h(1), forged], 'unknown-key', h(1).treeSize + 1);
      // the witness copy is checked against the pinned key too
      const r = await verify(heads, [{ source: 'witness', heads: [forged] }]);
      assert.equal(r.ok, false, describeResult(r));
      if (!r.ok) assert.equal(r.kind, 'unknown-key');
    });

    test('a head dated before the previous head is rejected', async () => {
      const size = h(0).treeSize + 1;
      const earlier = new Date(Date.parse(h(0).timestamp) - 60_000).toISOString();
      const back = sign({ treeSize: size, rootHash: rootAt(size), timestamp: earlier });
      await expectRejected([h(0), back, h(1), h(2)], 'inconsistent-heads', h(0).treeSize + 1);
      // the same head dated correctly is fine: it is the date that is refused
      const fine = sign({ treeSize: size, rootHash: rootAt(size), timestamp: h(0).timestamp });
      assert.ok((await verify([h(0), fine, h(1), h(2)])).ok);
    });

    test('two heads for the same size with different roots are rejected', async () => {
      const twin = sign({ treeSize: h(1).treeSize, rootHash: randomBytes(32).toString('hex'), timestamp: h(1).timestamp });
      await expectRejected([h(0), h(1), twin, h(2)], 'inconsistent-heads', h(0).treeSize + 1);
      // a witness holding the other root for that size: a split view
      await expectRejected(heads, 'fork', h(0).treeSize + 1, [{ source: 'witness', heads: [h(0), twin] }]);
    });

    test('a smaller head after a larger one is rejected', async () => {
      await expectRejected([h(0), h(2), h(1)], 'inconsistent-heads', h(0).treeSize + 1);
      await expectRejected(heads, 'rollback', h(0).treeSize + 1, [{ source: 'witness', heads: [h(0), h(2), h(1)] }]);
    });

    test('forgeries written into the database or a witness file make the CLI exit 7', async () => {
      assert.ok(place);
      const cases: { name: string; tamper?: (p: Place) => Promise<void>; witness?: TreeHead[]; kind: string }[] = [
        {
          name: 'invalid signature',
          kind: 'bad-signature',
          tamper: (p) =>
            withDb(p, async (db) => {
              const bad = sign({ treeSize: h(2).treeSize, rootHash: h(2).rootHash, timestamp: h(2).timestamp });
              const sig = Buffer.from(bad.signature, 'base64');
              sig[0] = (sig[0] ?? 0) ^ 0x80;
              await db.updateTable('audit_tree_heads').set({ signature: sig.toString('base64') }).where('tree_size', '=', h(2).treeSize).execute();
            }),
        },
        {
          name: 'unknown key',
          kind: 'unknown-key',
          tamper: (p) =>
            withDb(p, async (db) => {
              const forged = sign({ treeSize: h(2).treeSize, rootHash: h(2).rootHash, timestamp: h(2).timestamp }, foreignKey());
              await db.updateTable('audit_tree_heads').set({ key_id: forged.keyId, signature: forged.signature }).where('tree_size', '=', h(2).treeSize).execute();
            }),
        },
        {
          name: 'older timestamp',
          kind: 'inconsistent-heads',
          tamper: (p) =>
            withDb(p, async (db) => {
              const size = h(0).treeSize + 1;
              const back = sign({ treeSize: size, rootHash: rootAt(size), timestamp: new Date(Date.parse(h(0).timestamp) - 60_000).toISOString() });
              await db
                .insertInto('audit_tree_heads')
                .values({ tree_size: back.treeSize, root_hash: back.rootHash, timestamp: back.timestamp, key_id: back.keyId, signature: back.signature })
                .execute();
            }),
        },
        { name: 'same size, other root (witness)', kind: 'fork', witness: [h(0), sign({ treeSize: h(1).treeSize, rootHash: randomBytes(32).toString('hex'), timestamp: h(1).timestamp })] },
        { name: 'smaller size after larger (witness)', kind: 'rollback', witness: [h(0), h(2), h(1)] },
      ];
      const from = place;
      const results = cases.map(async (c) => {
        const copy = await clonePlace(from, root);
        try {
          await c.tamper?.(copy);
          const args = ['audit', 'verify', ...storeArgs(copy), '--public-key', pin.file];
          if (c.witness) {
            const file = join(mkdtempSync(join(root, 'w-')), 'tree-heads.jsonl');
            writeFileSync(file, c.witness.map((x) => `${JSON.stringify(x)}\n`).join(''));
            args.push('--witness', file);
          }
          const r = await runCli(args);
          assert.equal(r.code, 7, `${c.name}: ${show(r)}`);
          assert.equal(namedFailure(r)?.kind, c.kind, `${c.name}: ${show(r)}`);
        } finally {
          await copy.drop();
        }
      });
      await Promise.all(results);
    });
  });
}
