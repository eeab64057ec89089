// MC-AZ-01 — IDOR/BOLA across projects. A member of `fraud` (any role) and a user with no
// role at all reach every route under project `other` and get the same 404 for things
// that exist there as for things that do not (and for a project that does not exist):
// no 403, no data, no existence oracle, no state change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, type Client, json, PASSWORD, ROLES, type World, world } from '../helpers/server.ts';

interface Target {
  p: string;
  m: string;
  /** A ready version in staging. */
  v: string;
  /** A draft version with one artifact. */
  vDraft: string;
  d: string;
  pl: string;
  path: string;
  bid: string;
}

interface Call {
  name: string;
  send(c: Client, t: Target, attacker: string): Promise<Response>;
}

const P = (t: Target) => `/v1/projects/${t.p}`;
const M = (t: Target) => `${P(t)}/models/${t.m}`;

/** Every route that names a project, in the order of src/http/routes/*.ts. */
const CALLS: readonly Call[] = [
  { name: 'GET project', send: (c, t) => c.get(P(t)) },
  { name: 'GET bindings', send: (c, t) => c.get(`${P(t)}/bindings`) },
  { name: 'POST binding (bind self as project-admin)', send: (c, t, a) => c.post(`${P(t)}/bindings`, { principal: `user:${a}`, role: 'project-admin' }) },
  { name: 'DELETE binding', send: (c, t) => c.del(`${P(t)}/bindings/${t.bid}`) },
  { name: 'POST model', send: (c, t) => c.post(`${P(t)}/models`, { name: t.m }) },
  { name: 'GET models', send: (c, t) => c.get(`${P(t)}/models`) },
  { name: 'GET model', send: (c, t) => c.get(M(t)) },
  { name: 'POST version', send: (c, t) => c.post(`${M(t)}/versions`, {}) },
  { name: 'GET versions', send: (c, t) => c.get(`${M(t)}/versions`) },
  { name: 'GET version', send: (c, t) => c.get(`${M(t)}/versions/${t.v}`) },
  { name: 'POST finalize', send: (c, t) => c.post(`${M(t)}/versions/${t.vDraft}/finalize`) },
  { name: 'POST promote', send: (c, t) => c.post(`${M(t)}/versions/${t.v}/promote`, { stage: 'production' }) },
  { name: 'PUT artifact (upload)', send: (c, t) => c.upload(`${M(t)}/versions/${t.vDraft}/artifacts/planted.bin`, 'planted by an attacker') },
  { name: 'GET artifact (download)', send: (c, t) => c.get(`${M(t)}/versions/${t.v}/artifacts/${t.path}`) },
  { name: 'PUT deployment', send: (c, t) => c.put(`${P(t)}/deployments/${t.d}`, { environment: 'dev', model: t.m, version: Number(t.v), config: {} }) },
  { name: 'GET deployments', send: (c, t) => c.get(`${P(t)}/deployments`) },
  { name: 'GET deployment', send: (c, t) => c.get(`${P(t)}/deployments/${t.d}`) },
  { name: 'POST pipeline run', send: (c, t) => c.post(`${P(t)}/pipelines/${t.pl}/runs`, { parameters: { epochs: 1 } }) },
  { name: 'GET pipeline runs', send: (c, t) => c.get(`${P(t)}/pipelines/${t.pl}/runs`) },
  { name: 'GET audit events ?project=', send: (c, t) => c.get(`/v1/audit/events?project=${t.p}`) },
];

const ATTACKERS = [...ROLES, 'outsider'] as const;

/** The body of a response with its requestId removed, and the requestId. */
async function shape(r: Response): Promise<{ status: number; body: string; requestId: unknown; text: string }> {
  const text = await r.text();
  const parsed = JSON.parse(text) as { error?: { requestId?: unknown } };
  const requestId = parsed.error?.requestId;
  if (parsed.error) delete parsed.error.requestId;
  return { status: r.status, body: JSON.stringify(parsed), requestId, text };
}

interface OtherState {
  models: string[];
  versions: [number, string, string, string[]][];
  deployments: [string, string, number][];
  runs: number;
  bindings: string[];
}

for (const backend of BACKENDS) {
  describe(`MC-AZ-01 IDOR across projects (${backend})`, () => {
    let w: World;
    let owner: Client;
    let existing: Target;
    let before0: OtherState;

    const stateOfOther = async (): Promise<OtherState> => {
      const models = (await json<{ models: { name: string }[] }>(await owner.get('/v1/projects/other/models'))).models.map((m) => m.name);
      const versions = (
        await json<{ versions: { version: number; state: string; stage: string; artifacts: { path: string; sha256: string }[] }[] }>(
          await owner.get('/v1/projects/other/models/secret/versions'),
        )
      ).versions.map((v): [number, string, string, string[]] => [v.version, v.state, v.stage, v.artifacts.map((a) => `${a.path}@${a.sha256}`)]);
      const deployments = (await json<{ deployments: { name: string; environment: string; version: number }[] }>(await owner.get('/v1/projects/other/deployments'))).deployments.map(
        (d): [string, string, number] => [d.name, d.environment, d.version],
      );
      const runs = (await json<{ runs: unknown[] }>(await owner.get('/v1/projects/other/pipelines/retrain/runs'))).runs.length;
      const bindings = (await json<{ bindings: { id: string; principal: string; role: string }[] }>(await w.admin.get('/v1/projects/other/bindings'))).bindings
        .map((b) => `${b.id} ${b.principal} ${b.role}`)
        .sort();
      return { models, versions, deployments, runs, bindings };
    };

    before(async () => {
      w = await world(backend);
      // A member of `other` only, who fills it with one of everything.
      assert.equal((await w.admin.post('/v1/admin/users', { username: 'other-member', password: PASSWORD })).status, 201);
      for (const role of ['ml-engineer', 'release-manager', 'project-admin']) {
        assert.equal((await w.admin.post('/v1/projects/other/bindings', { principal: 'user:other-member', role })).status, 201);
      }
      owner = await w.client('other-member');
      const ok = async (r: Promise<Response>, status: number) => {
        const res = await r;
        assert.equal(res.status, status, await res.clone().text());
      };
      await ok(owner.post('/v1/projects/other/models', { name: 'secret', description: 'the crown jewels' }), 201);
      const V = '/v1/projects/other/models/secret/versions';
      await ok(owner.post(V, {}), 201);
      await ok(owner.upload(`${V}/1/artifacts/model.bin`, 'secret weights of other'), 201);
      await ok(owner.post(`${V}/1/finalize`), 200);
      await ok(owner.post(`${V}/1/promote`, { stage: 'staging' }), 200);
      await ok(owner.post(V, {}), 201);
      await ok(owner.upload(`${V}/2/artifacts/model.bin`, 'draft weights of other'), 201);
      await ok(owner.put('/v1/projects/other/deployments/web', { environment: 'dev', model: 'secret', version: 1, config: { replicas: 2 } }), 200);
      await ok(owner.post('/v1/projects/other/pipelines/retrain/runs', { parameters: { epochs: 3 } }), 202);
      const bindings = (await json<{ bindings: { id: string; principal: string }[] }>(await w.admin.get('/v1/projects/other/bindings'))).bindings;
      const bid = bindings.find((b) => b.principal === 'user:other-member')?.id;
      assert.ok(bid);
      existing = { p: 'other', m: 'secret', v: '1', vDraft: '2', d: 'web', pl: 'retrain', path: 'model.bin', bid };
      before0 = await stateOfOther();
    });
    after(() => w.server.close());

    for (const call of CALLS) {
      test(`${call.name} under project other: the same 404 for what exists and what does not, for every fraud role and an outsider`, async () => {
        const missing: Target = { p: 'other', m: 'nosuch', v: '9', vDraft: '8', d: 'nosuch', pl: 'nosuch', path: 'nosuch.bin', bid: 'bnd_nosuchbinding000' };
        const ghost: Target = { ...existing, p: 'ghost' };
        for (const a of ATTACKERS) {
          const c = w.as[a];
          const results = [];
          for (const t of [existing, missing, ghost]) {
            const r = await call.send(c, t, a);
            assert.equal(r.headers.get('x-content-sha256'), null, `${a}: no digest header`);
            assert.equal(r.headers.get('etag'), null, `${a}: no etag`);
            results.push(await shape(r));
          }
          const [onExisting, onMissing, onGhost] = results;
          assert.ok(onExisting && onMissing && onGhost);
          assert.equal(onExisting.status, 404, `${a} ${call.name} on what exists: ${onExisting.text}`);
          assert.equal(JSON.parse(onExisting.body).error.code, 'not_found');
          assert.equal(onExisting.body, onMissing.body, `${a} ${call.name}: existing and missing resources answer alike`);
          assert.equal(onExisting.body, onGhost.body, `${a} ${call.name}: a visible-to-others project answers like no project`);
          assert.notEqual(onExisting.requestId, onMissing.requestId);
          for (const leak of ['secret', 'crown', 'web', 'retrain', 'other-member', existing.bid, 'model.bin']) {
            assert.ok(!onExisting.body.includes(leak), `${a} ${call.name}: the 404 mentions '${leak}'`);
          }
        }
      });
    }

    test("nothing in other changed after every attack", async () => {
      assert.deepEqual(await stateOfOther(), before0);
      assert.deepEqual(before0.models, ['secret']);
      assert.equal(before0.runs, 1);
    });

    test("fraud's auditor and project-admin read only fraud's audit events", async () => {
      for (const role of ['auditor', 'project-admin'] as const) {
        const c = w.as[role];
        assert.equal((await c.get('/v1/audit/events?project=fraud')).status, 200);
        const r = await c.get('/v1/audit/events?limit=1000');
        assert.equal(r.status, 200);
        const events = (await json<{ events: { resource: string | null }[] }>(r)).events;
        assert.ok(events.length > 0);
        for (const e of events) {
          assert.ok(!/^[a-z]+:other(\/|@|$)/.test(e.resource ?? ''), `${role} saw an event of project other: ${e.resource}`);
        }
      }
    });

    test('listing /v1/projects shows only the projects the caller can see', async () => {
      const names = async (c: Client) => (await json<{ projects: { name: string }[] }>(await c.get('/v1/projects'))).projects.map((p) => p.name);
      for (const role of ROLES) assert.deepEqual(await names(w.as[role]), ['fraud'], role);
      assert.deepEqual(await names(w.as.outsider), []);
      assert.deepEqual(await names(owner), ['other']);
      assert.deepEqual(await names(w.admin), ['fraud', 'other']);
    });
  });
}
