// Crash safety of the audit log: a server in a child process is SIGKILLed while several
// clients create models and versions. After a restart on the same data, every action the
// server acknowledged has its audit event (matched by request id), and once the restarted
// server has signed a tree head the real `modelkeep audit verify` passes: no gap, no
// event without its leaf, no head over a tree that was never written.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AuditEvent, TreeHead } from '../../src/audit/index.ts';
import { pinKey, runCli, show } from '../audit/fixtures.ts';
import { BACKENDS, Client, createPgDatabase, expectOk, json, loginWithRecoveryCode, PASSWORD, stepUpWithNewTotp } from '../helpers/server.ts';
import { type ChildServer, spawnServer, waitFor } from './fixtures/harness.ts';

const WORKERS = 4;
/** Acknowledged actions to wait for before the kill. */
const ACKS_BEFORE_KILL = 40;

async function allEvents(admin: Client): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for (let after = 0; ; ) {
    const { events } = await json<{ events: AuditEvent[] }>(await expectOk(await admin.get(`/v1/audit/events?after=${after}&limit=1000`)));
    out.push(...events);
    if (events.length < 1000) return out;
    after = events.at(-1)!.seq;
  }
}

for (const backend of BACKENDS) {
  describe(`audit log survives SIGKILL under write load (${backend})`, () => {
    const root = mkdtempSync(join(tmpdir(), 'mk-audit-kill9-'));
    const dataDir = join(root, 'data');
    let pgdb: { url: string; drop(): Promise<void> } | null = null;
    const servers: ChildServer[] = [];

    after(async () => {
      for (const s of servers) await s.kill('SIGKILL');
      await pgdb?.drop();
      rmSync(root, { recursive: true, force: true });
    });

    test('every acknowledged action is in the log and the log verifies after restart', async () => {
      pgdb = backend === 'postgres' ? await createPgDatabase() : null;
      const store = { dataDir, ...(pgdb ? { databaseUrl: pgdb.url } : {}) };
      const first = await spawnServer({ ...store, users: [{ username: 'admin', password: PASSWORD, platformAdmin: true }] });
      servers.push(first);

      const admin = new Client(first.url);
      await expectOk(await admin.login('admin'));
      // Granting roles needs a fresh second factor: the admin enrolls one and steps up.
      const { recoveryCodes } = await stepUpWithNewTotp(admin);
      await expectOk(await admin.post('/v1/projects', { name: 'load' }));
      const clients: Client[] = [];
      for (let i = 0; i < WORKERS; i++) {
        await expectOk(await admin.post('/v1/admin/users', { username: `w${i}`, password: PASSWORD }));
        await expectOk(await admin.post('/v1/projects/load/bindings', { principal: `user:w${i}`, role: 'ml-engineer' }));
        const c = new Client(first.url);
        await expectOk(await c.login(`w${i}`));
        clients.push(c);
      }

      // Load: each worker creates a model and a version of it, again and again, until the server is gone.
      const acked: { requestId: string; what: string }[] = [];
      let stop = false;
      const worker = async (c: Client, w: number) => {
        for (let i = 0; !stop; i++) {
          for (const [path, body] of [
            ['/v1/projects/load/models', { name: `m-${w}-${i}` }],
            [`/v1/projects/load/models/m-${w}-${i}/versions`, {}],
          ] as const) {
            let r: Response;
            try {
              r = await c.post(path, body);
            } catch {
              return; // the server died with this request in flight: not acknowledged
            }
            if (!r.ok) return;
            const requestId = r.headers.get('x-request-id');
            assert.ok(requestId, 'every answer carries its request id');
            acked.push({ requestId, what: `POST ${path}` });
            await r.arrayBuffer();
          }
        }
      };
      const load = clients.map((c, w) => worker(c, w));
      await waitFor('enough acknowledged writes', () => (acked.length >= ACKS_BEFORE_KILL ? true : undefined), 60_000);
      const killed = await first.kill('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL');
      stop = true;
      await Promise.all(load);
      const ackedAtKill = acked.length;
      assert.ok(ackedAtKill >= ACKS_BEFORE_KILL);

      // Restart on the same data.
      const second = await spawnServer({ ...store });
      servers.push(second);
      const auditor = await loginWithRecoveryCode(second.url, 'admin', recoveryCodes[0] ?? '');
      const events = await allEvents(auditor);
      const logged = new Set(events.map((e) => e.requestId));
      const lost = acked.filter((a) => !logged.has(a.requestId));
      assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged actions have no audit event`);
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
        'sequence numbers have no gap',
      );

      // The restarted server signs a head over everything (its timer runs every 2 s).
      const target = events.length;
      const head = await waitFor(
        'a tree head over the restarted log',
        async () => {
          const h = await json<TreeHead>(await expectOk(await fetch(`${second.url}/v1/audit/tree-head`)));
          return h.treeSize >= target ? h : undefined;
        },
        30_000,
        100,
      );
      const pin = pinKey(dataDir, root);
      const args = ['audit', 'verify', ...(pgdb ? ['--database-url', pgdb.url] : ['--data-dir', dataDir]), '--public-key', pin.file, '--json'];
      const r = await runCli(args);
      assert.equal(r.code, 0, show(r));
      const report = JSON.parse(r.stdout) as { ok: boolean; verifiedSize: number; events: number };
      assert.equal(report.ok, true);
      assert.ok(report.verifiedSize >= head.treeSize, show(r));
    });
  });
}
