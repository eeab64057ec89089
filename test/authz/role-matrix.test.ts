// The default role matrix (project scope), row by row, through the HTTP API: for each
// row every project role of `fraud` and the platform-admin try the action; the roles of
// the row succeed and every other one gets 403. Plus: 404 (not 403) for a caller who may
// not see the project, the stage precondition of production deployments, finalize's
// artifact precondition, and names that are refused (422) wherever they appear.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, type Client, json, PASSWORD, ROLES, type World, world } from '../helpers/server.ts';

type Role = (typeof ROLES)[number];
type Who = Role | 'admin';
const EVERY: readonly Who[] = [...ROLES, 'admin'];

const P = '/v1/projects/fraud';
const M_INT = `${P}/models/m-int`;
const M_RES = `${P}/models/m-res`;

for (const backend of BACKENDS) {
  describe(`role matrix (${backend})`, () => {
    let w: World;
    let n = 0;
    const uniq = (prefix: string) => `${prefix}-${++n}`;
    const as = (who: Who): Client => (who === 'admin' ? w.admin : w.as[who]);
    const mle = () => w.as['ml-engineer'];
    const rm = () => w.as['release-manager'];

    const must = async (r: Promise<Response>, status: number): Promise<Response> => {
      const res = await r;
      assert.equal(res.status, status, `fixture: ${await res.clone().text()}`);
      return res;
    };
    const draft = async (model = M_INT, artifact = true): Promise<string> => {
      const v = await json<{ version: number }>(await must(mle().post(`${model}/versions`, {}), 201));
      const path = `${model}/versions/${v.version}`;
      if (artifact) await must(mle().upload(`${path}/artifacts/model.bin`, `bytes of ${path}`), 201);
      return path;
    };
    const ready = async (model = M_INT) => {
      const path = await draft(model);
      await must(mle().post(`${path}/finalize`), 200);
      return path;
    };
    const staged = async (stage: 'staging' | 'production') => {
      const path = await ready();
      await must((stage === 'production' ? rm() : mle()).post(`${path}/promote`, { stage }), 200);
      return path;
    };

    /**
     * Runs `attempt` once per principal (each on a fresh target) and checks that exactly
     * `allowed` succeed with `ok` and everyone else in `who` gets 403 forbidden.
     */
    const row = async (allowed: readonly Who[], ok: number, attempt: (c: Client, who: Who) => Promise<Response>, who: readonly Who[] = EVERY) => {
      const wrong: string[] = [];
      for (const p of who) {
        const r = await attempt(as(p), p);
        const text = await r.text();
        const want = allowed.includes(p) ? ok : 403;
        if (r.status !== want) wrong.push(`${p}: expected ${want}, got ${r.status} ${text.slice(0, 160)}`);
        else if (want === 403 && (JSON.parse(text) as { error: { code: string } }).error.code !== 'forbidden') wrong.push(`${p}: 403 without code forbidden`);
      }
      assert.deepEqual(wrong, []);
    };

    before(async () => {
      w = await world(backend);
      await must(mle().post(`${P}/models`, { name: 'm-int' }), 201);
      await must(mle().post(`${P}/models`, { name: 'm-res', sensitivity: 'restricted' }), 201);
      await ready(M_INT); // m-int@1
      await ready(M_RES); // m-res@1
      await must(rm().post(`${M_INT}/versions/1/promote`, { stage: 'production' }), 200);
      await must(mle().put(`${P}/deployments/dep`, { environment: 'dev', model: 'm-int', version: 1, config: {} }), 200);
      await must(w.as['data-scientist'].post(`${P}/pipelines/pipe/runs`, {}), 202);
    });
    after(() => w.server.close());

    // ---- the matrix, row by row

    test('read project, model, version, deployment and pipeline metadata: every role (and platform-admin)', async () => {
      for (const path of [
        P,
        `${P}/models`,
        M_INT,
        M_RES,
        `${M_RES}/versions`,
        `${M_RES}/versions/1`,
        `${P}/deployments`,
        `${P}/deployments/dep`,
        `${P}/pipelines/pipe/runs`,
      ]) {
        await row(EVERY, 200, (c) => c.get(path));
      }
    });

    test('create model, create version, upload artifact, finalize: data-scientist and ml-engineer', async () => {
      await row(['data-scientist', 'ml-engineer'], 201, (c) => c.post(`${P}/models`, { name: uniq('model') }));
      await row(['data-scientist', 'ml-engineer'], 201, (c) => c.post(`${M_INT}/versions`, {}));
      await row(['data-scientist', 'ml-engineer'], 201, async (c) => c.upload(`${await draft(M_INT, false)}/artifacts/w.bin`, 'weights'));
      await row(['data-scientist', 'ml-engineer'], 200, async (c) => c.post(`${await draft()}/finalize`));
    });

    test('download artifacts of internal models: data-scientist, ml-engineer, release-manager', async () => {
      await row(['data-scientist', 'ml-engineer', 'release-manager'], 200, (c) => c.get(`${M_INT}/versions/1/artifacts/model.bin`));
    });

    test('download artifacts of restricted models: ml-engineer, release-manager', async () => {
      await row(['ml-engineer', 'release-manager'], 200, (c) => c.get(`${M_RES}/versions/1/artifacts/model.bin`));
    });

    test('promote to staging: ml-engineer, release-manager', async () => {
      await row(['ml-engineer', 'release-manager'], 200, async (c) => c.post(`${await ready()}/promote`, { stage: 'staging' }));
      // Taking a staging version out of staging (not production) is the same right.
      await row(['ml-engineer', 'release-manager'], 200, async (c) => c.post(`${await staged('staging')}/promote`, { stage: 'archived' }));
    });

    test('trigger retraining: data-scientist, ml-engineer', async () => {
      await row(['data-scientist', 'ml-engineer'], 202, (c) => c.post(`${P}/pipelines/pipe/runs`, { parameters: { epochs: 2 } }));
    });

    test('promote to production, archive a production version: release-manager only', async () => {
      await row(['release-manager'], 200, async (c) => c.post(`${await staged('staging')}/promote`, { stage: 'production' }));
      await row(['release-manager'], 200, async (c) => c.post(`${await ready()}/promote`, { stage: 'production' }));
      await row(['release-manager'], 200, async (c) => c.post(`${await staged('production')}/promote`, { stage: 'archived' }));
      await row(['release-manager'], 200, async (c) => c.post(`${await staged('production')}/promote`, { stage: 'staging' }));
    });

    test('update deployments: dev and staging for ml-engineer and release-manager, production for release-manager', async () => {
      for (const environment of ['dev', 'staging'] as const) {
        await row(['ml-engineer', 'release-manager'], 200, (c) => c.put(`${P}/deployments/${uniq('dep')}`, { environment, model: 'm-int', version: 1, config: {} }));
      }
      await row(['release-manager'], 200, (c) => c.put(`${P}/deployments/${uniq('dep')}`, { environment: 'production', model: 'm-int', version: 1, config: {} }));
      // A deployment that is in production is a production change whatever it becomes.
      await row(['release-manager'], 200, async (c) => {
        const path = `${P}/deployments/${uniq('dep')}`;
        await must(rm().put(path, { environment: 'production', model: 'm-int', version: 1, config: {} }), 200);
        return c.put(path, { environment: 'staging', model: 'm-int', version: 1, config: {} });
      });
    });

    test('production deployments need a version in the production stage (409 otherwise)', async () => {
      for (const path of [await ready(), await staged('staging')]) {
        const version = Number(path.slice(path.lastIndexOf('/') + 1));
        const r = await rm().put(`${P}/deployments/${uniq('dep')}`, { environment: 'production', model: 'm-int', version, config: {} });
        assert.equal(r.status, 409, await r.clone().text());
        assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'conflict');
      }
    });

    test('finalize needs at least one artifact (409 otherwise)', async () => {
      const empty = await draft(M_INT, false);
      const r = await mle().post(`${empty}/finalize`);
      assert.equal(r.status, 409);
      assert.equal((await json<{ state: string }>(await mle().get(empty))).state, 'draft');
    });

    test('read project audit events and bindings: auditor, project-admin (and platform-admin)', async () => {
      await row(['auditor', 'project-admin', 'admin'], 200, (c) => c.get('/v1/audit/events?project=fraud'));
      await row(['auditor', 'project-admin', 'admin'], 200, (c) => c.get(`${P}/bindings`));
    });

    test('manage bindings in the project: project-admin (and platform-admin)', async () => {
      const fresh = async () => {
        const username = uniq('member');
        await must(w.admin.post('/v1/admin/users', { username }), 201);
        return username;
      };
      await row(['project-admin', 'admin'], 201, async (c) => c.post(`${P}/bindings`, { principal: `user:${await fresh()}`, role: 'data-scientist' }));
      await row(['project-admin', 'admin'], 204, async (c) => {
        const b = await json<{ id: string }>(await must(w.admin.post(`${P}/bindings`, { principal: `user:${await fresh()}`, role: 'viewer' }), 201));
        return c.del(`${P}/bindings/${b.id}`);
      });
    });

    test('never their own bindings, never platform-admin: for project-admin, platform-admin, and everyone else', async () => {
      const bindings0 = await json(await w.admin.get(`${P}/bindings`));
      for (const who of EVERY) {
        const name = who === 'admin' ? 'admin' : who;
        for (const role of ROLES) {
          const r = await as(who).post(`${P}/bindings`, { principal: `user:${name}`, role });
          assert.equal(r.status, 403, `${who} binds itself as ${role}`);
        }
        const own = (await json<{ bindings: { id: string; principal: string }[] }>(await w.admin.get(`${P}/bindings`))).bindings.find((b) => b.principal === `user:${name}`);
        if (own) assert.equal((await as(who).del(`${P}/bindings/${own.id}`)).status, 403, `${who} removes its own binding`);
        const pa = await as(who).post(`${P}/bindings`, { principal: 'user:viewer', role: 'platform-admin' });
        assert.ok([403, 422].includes(pa.status), `${who} grants platform-admin: ${pa.status}`);
      }
      assert.deepEqual(await json(await w.admin.get(`${P}/bindings`)), bindings0);
    });

    test('platform-admin: creates projects and users, manages any binding, reads all audit events', async () => {
      assert.equal((await w.admin.post('/v1/projects', { name: uniq('proj') })).status, 201);
      const username = uniq('user');
      assert.equal((await w.admin.post('/v1/admin/users', { username, password: PASSWORD })).status, 201);
      // In a project where it holds no role at all.
      const b = await w.admin.post('/v1/projects/other/bindings', { principal: `user:${username}`, role: 'viewer' });
      assert.equal(b.status, 201);
      const { id } = await json<{ id: string }>(b);
      assert.equal((await w.admin.get('/v1/projects/other/bindings')).status, 200);
      assert.equal((await w.admin.del(`/v1/projects/other/bindings/${id}`)).status, 204);
      const events = (await json<{ events: { resource: string | null }[] }>(await w.admin.get('/v1/audit/events?limit=1000'))).events;
      assert.ok(events.some((e) => e.resource === 'project:other'), 'platform-wide audit includes project other');
      assert.ok(events.some((e) => (e.resource ?? '').startsWith('model:fraud/')), 'and project fraud');
      assert.equal((await w.admin.get('/v1/audit/events?project=other')).status, 200);
    });

    test('platform-admin does not download or promote (least privilege), nor write to the registry', async () => {
      for (const path of [`${M_INT}/versions/1/artifacts/model.bin`, `${M_RES}/versions/1/artifacts/model.bin`]) {
        assert.equal((await w.admin.get(path)).status, 403);
      }
      for (const stage of ['staging', 'production', 'archived']) {
        const v = await ready();
        assert.equal((await w.admin.post(`${v}/promote`, { stage })).status, 403, stage);
        assert.equal((await json<{ stage: string }>(await mle().get(v))).stage, 'none');
      }
      assert.equal((await w.admin.post(`${P}/models`, { name: uniq('by-admin') })).status, 403);
      assert.equal((await w.admin.put(`${P}/deployments/${uniq('by-admin')}`, { environment: 'dev', model: 'm-int', version: 1, config: {} })).status, 403);
      assert.equal((await w.admin.post(`${P}/pipelines/pipe/runs`, {})).status, 403);
    });

    test('non-admins create neither projects nor users', async () => {
      await row(['admin'], 201, (c) => c.post('/v1/projects', { name: uniq('proj') }));
      await row(['admin'], 201, (c) => c.post('/v1/admin/users', { username: uniq('user') }));
    });

    // ---- 404 versus 403

    test('a viewer of fraud gets 403 for a forbidden action on a fraud model; an outsider gets 404 for the same request', async () => {
      const requests: [string, (c: Client) => Promise<Response>][] = [
        ['create version', (c) => c.post(`${M_INT}/versions`, {})],
        ['download', (c) => c.get(`${M_INT}/versions/1/artifacts/model.bin`)],
        ['promote', (c) => c.post(`${M_INT}/versions/1/promote`, { stage: 'archived' })],
        ['upload', (c) => c.upload(`${M_INT}/versions/1/artifacts/x.bin`, 'x')],
        ['deploy', (c) => c.put(`${P}/deployments/dep`, { environment: 'staging', model: 'm-int', version: 1, config: {} })],
        ['read bindings', (c) => c.get(`${P}/bindings`)],
        ['read project audit', (c) => c.get('/v1/audit/events?project=fraud')],
      ];
      for (const [what, send] of requests) {
        const v = await send(w.as.viewer);
        assert.equal(v.status, 403, `viewer ${what}`);
        assert.equal((await json<{ error: { code: string } }>(v)).error.code, 'forbidden');
        const o = await send(w.as.outsider);
        assert.equal(o.status, 404, `outsider ${what}`);
        const body = await json<{ error: { code: string; message: string } }>(o);
        assert.equal(body.error.code, 'not_found');
        assert.ok(!body.error.message.includes('m-int'), 'the 404 does not name the model');
      }
      // Reads, allowed to the viewer, are 404 to the outsider too.
      assert.equal((await w.as.viewer.get(M_INT)).status, 200);
      assert.equal((await w.as.outsider.get(M_INT)).status, 404);
    });

    // ---- names

    test('bad names → 422 for project, model, deployment and pipeline names', async () => {
      const bad = ['Fraud', 'UPPER', '-leading', 'a'.repeat(64), '', 'has_underscore', 'dot.name', 'a'.repeat(200)];
      const code = async (r: Response) => (await json<{ error: { code: string } }>(r)).error.code;
      for (const name of bad) {
        const label = JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name);
        const project = await w.admin.post('/v1/projects', { name });
        assert.equal(project.status, 422, `project ${label}`);
        assert.equal(await code(project), 'invalid_input');
        const model = await mle().post(`${P}/models`, { name });
        assert.equal(model.status, 422, `model ${label}`);
        assert.equal(await code(model), 'invalid_input');
        const enc = encodeURIComponent(name);
        if (name !== '') {
          // As a path segment (an empty one is a different route).
          const inPath = await mle().get(`/v1/projects/${enc}/models`);
          assert.equal(inPath.status, 422, `project in path ${label}`);
          const modelInPath = await mle().get(`${P}/models/${enc}`);
          assert.equal(modelInPath.status, 422, `model in path ${label}`);
        }
        const dep = await mle().put(`${P}/deployments/${enc}`, { environment: 'dev', model: 'm-int', version: 1, config: {} });
        assert.equal(dep.status, 422, `deployment ${label}`);
        assert.equal(await code(dep), 'invalid_input');
        const depGet = await mle().get(`${P}/deployments/${enc}`);
        assert.equal(depGet.status, 422, `deployment read ${label}`);
        const run = await mle().post(`${P}/pipelines/${enc}/runs`, {});
        assert.equal(run.status, 422, `pipeline ${label}`);
        assert.equal(await code(run), 'invalid_input');
        const runs = await mle().get(`${P}/pipelines/${enc}/runs`);
        assert.equal(runs.status, 422, `pipeline read ${label}`);
      }
      // The longest good name (63) and a leading digit are fine everywhere.
      for (const name of ['a'.repeat(63), '0-model']) {
        assert.equal((await w.admin.post('/v1/projects', { name })).status, 201);
        assert.equal((await mle().post(`${P}/models`, { name })).status, 201);
        assert.equal((await mle().put(`${P}/deployments/${name}`, { environment: 'dev', model: 'm-int', version: 1, config: {} })).status, 200);
        assert.equal((await mle().post(`${P}/pipelines/${name}/runs`, {})).status, 202);
      }
      // Nothing was created under a bad name.
      const projects = (await json<{ projects: { name: string }[] }>(await w.admin.get('/v1/projects'))).projects.map((p) => p.name);
      const models = (await json<{ models: { name: string }[] }>(await mle().get(`${P}/models`))).models.map((m) => m.name);
      for (const name of bad) {
        assert.ok(!projects.includes(name));
        assert.ok(!models.includes(name));
      }
    });
  });
}
