// MC-AZ-04 — self-escalation through role bindings. Nobody changes their own access
// (project-admin or platform-admin alike), platform-admin is never granted through the
// API, a binding is only reachable through its own project, and every refusal is in the
// audit log as a denial.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, type Client, json, PASSWORD, ROLES, type World, world } from '../helpers/server.ts';

interface Binding {
  id: string;
  principal: string;
  role: string;
}
interface AuditEvent {
  action: string;
  outcome: string;
  reason: string | null;
  requestId: string | null;
  resource: string | null;
  details: Record<string, unknown>;
}

for (const backend of BACKENDS) {
  describe(`MC-AZ-04 self-escalation through role bindings (${backend})`, () => {
    let w: World;
    let pa: Client;
    /** Request ids of every refused attempt, checked against the audit log at the end. */
    const denied: { what: string; requestId: string }[] = [];

    const bindings = async (project: string): Promise<Binding[]> => {
      const r = await w.admin.get(`/v1/projects/${project}/bindings`);
      assert.equal(r.status, 200);
      return (await json<{ bindings: Binding[] }>(r)).bindings;
    };
    const summary = async (project: string) =>
      (await bindings(project))
        .map((b) => `${b.id} ${b.principal} ${b.role}`)
        .sort()
        .join('\n');
    const rolesOf = async (c: Client) => (await json<{ roles: { scope: string; role: string }[] }>(await c.get('/v1/me'))).roles.map((r) => `${r.scope}/${r.role}`).sort();

    /** Sends, expects a refusal with one of `statuses`, and remembers it for the audit check. */
    const refused = async (what: string, r: Promise<Response>, statuses: readonly number[]) => {
      const res = await r;
      const text = await res.text();
      assert.ok(statuses.includes(res.status), `${what}: expected ${statuses.join(' or ')}, got ${res.status} ${text}`);
      denied.push({ what, requestId: res.headers.get('x-request-id') ?? '' });
      return JSON.parse(text) as { error: { code: string } };
    };

    before(async () => {
      w = await world(backend);
      pa = w.as['project-admin'];
      assert.equal((await w.admin.post('/v1/admin/users', { username: 'other-admin', password: PASSWORD })).status, 201);
      assert.equal((await w.admin.post('/v1/projects/other/bindings', { principal: 'user:other-admin', role: 'project-admin' })).status, 201);
      assert.equal((await w.admin.post('/v1/admin/users', { username: 'candidate', password: PASSWORD })).status, 201);
    });
    after(() => w.server.close());

    test('a project-admin cannot bind itself to any role', async () => {
      const before0 = await summary('fraud');
      const roles0 = await rolesOf(pa);
      for (const role of [...ROLES, 'platform-admin']) {
        await refused(`project-admin binds itself as ${role}`, pa.post('/v1/projects/fraud/bindings', { principal: 'user:project-admin', role }), [403]);
        await refused(
          `project-admin binds itself as ${role} with an expiry`,
          pa.post('/v1/projects/fraud/bindings', { principal: 'user:project-admin', role, expiresAt: new Date(Date.now() + 3600_000).toISOString() }),
          [403],
        );
      }
      // Other spellings of itself never become a grant either.
      for (const principal of ['user:PROJECT-ADMIN', 'user:project-admin ', ' user:project-admin', 'user:project-admin\u0000', 'user: project-admin', 'user:project-admin\n']) {
        const r = await pa.post('/v1/projects/fraud/bindings', { principal, role: 'release-manager' });
        assert.ok([403, 404, 422].includes(r.status), `${JSON.stringify(principal)}: ${r.status}`);
      }
      for (const role of ['project-admin\u0000', 'PROJECT-ADMIN', ' project-admin', 'project-admin\n']) {
        const r = await pa.post('/v1/projects/fraud/bindings', { principal: 'user:project-admin', role });
        assert.ok([403, 422].includes(r.status), `role ${JSON.stringify(role)}: ${r.status}`);
      }
      assert.equal(await summary('fraud'), before0);
      assert.deepEqual(await rolesOf(pa), roles0);
      assert.deepEqual(roles0, ['project:fraud/project-admin']);
    });

    test('nobody binds anyone as platform-admin through the API', async () => {
      const before0 = await summary('fraud');
      await refused('project-admin grants platform-admin', pa.post('/v1/projects/fraud/bindings', { principal: 'user:candidate', role: 'platform-admin' }), [403, 422]);
      await refused('platform-admin grants platform-admin', w.admin.post('/v1/projects/fraud/bindings', { principal: 'user:candidate', role: 'platform-admin' }), [403, 422]);
      assert.equal(await summary('fraud'), before0);
      // The candidate holds no role anywhere and cannot administer.
      const candidate = await w.client('candidate');
      assert.deepEqual(await rolesOf(candidate), []);
      assert.equal((await candidate.get('/v1/admin/users')).status, 403);
      const events = await json<{ events: AuditEvent[] }>(await w.admin.get('/v1/audit/events?action=binding.create&limit=1000'));
      assert.ok(!events.events.some((e) => (e.resource ?? '').includes('candidate')), 'no binding was created for the candidate');
    });

    test('the platform-admin cannot change its own bindings', async () => {
      const before0 = await summary('fraud');
      for (const role of ROLES) {
        await refused(`admin binds itself as ${role}`, w.admin.post('/v1/projects/fraud/bindings', { principal: 'user:admin', role }), [403]);
      }
      assert.equal(await summary('fraud'), before0);

      // Someone else may give the admin a project role; the admin may not remove it itself.
      const given = await pa.post('/v1/projects/fraud/bindings', { principal: 'user:admin', role: 'viewer' });
      assert.equal(given.status, 201);
      const b = await json<Binding>(given);
      await refused('admin removes its own project binding', w.admin.del(`/v1/projects/fraud/bindings/${b.id}`), [403]);
      assert.ok((await bindings('fraud')).some((x) => x.id === b.id), 'the binding is still there');

      // Its platform binding is not a binding of any project: not reachable through a project path.
      const created = await json<{ events: AuditEvent[] }>(await w.admin.get('/v1/audit/events?action=binding.create&limit=1000'));
      const platform = created.events.find((e) => e.resource === 'binding:platform/user:admin/platform-admin');
      const platformId = platform?.details.bindingId;
      assert.equal(typeof platformId, 'string');
      await refused('admin removes its platform binding through fraud', w.admin.del(`/v1/projects/fraud/bindings/${String(platformId)}`), [403, 404]);
      await refused('project-admin removes the platform binding through fraud', pa.del(`/v1/projects/fraud/bindings/${String(platformId)}`), [403, 404]);
      assert.equal((await w.admin.get('/v1/admin/users')).status, 200, 'the admin is still platform-admin');
      assert.deepEqual(await rolesOf(w.admin), ['platform/platform-admin', 'project:fraud/viewer']);
    });

    test('a project-admin cannot remove its own binding', async () => {
      const own = (await bindings('fraud')).find((b) => b.principal === 'user:project-admin' && b.role === 'project-admin');
      assert.ok(own);
      await refused('project-admin removes its own binding', pa.del(`/v1/projects/fraud/bindings/${own.id}`), [403]);
      assert.ok((await bindings('fraud')).some((b) => b.id === own.id));
      assert.equal((await pa.get('/v1/projects/fraud/bindings')).status, 200, 'still a project-admin');
    });

    test("a binding of another project cannot be deleted by id through one's own project path", async () => {
      const target = (await bindings('other')).find((b) => b.principal === 'user:other-admin');
      assert.ok(target);
      const before0 = await summary('other');
      const r = await refused("fraud's project-admin deletes other's binding via /projects/fraud", pa.del(`/v1/projects/fraud/bindings/${target.id}`), [404]);
      assert.equal(r.error.code, 'not_found');
      await refused("fraud's project-admin deletes other's binding via /projects/other", pa.del(`/v1/projects/other/bindings/${target.id}`), [404]);
      // Even the platform-admin only reaches a binding through the project that owns it.
      await refused("admin deletes other's binding via /projects/fraud", w.admin.del(`/v1/projects/fraud/bindings/${target.id}`), [404]);
      assert.equal(await summary('other'), before0);
      const otherAdmin = await w.client('other-admin');
      assert.equal((await otherAdmin.get('/v1/projects/other/bindings')).status, 200, 'other-admin still administers other');
    });

    test('every refusal above is in the audit log with outcome deny', async () => {
      assert.ok(denied.length >= 20);
      const r = await w.admin.get('/v1/audit/events?outcome=deny&limit=1000');
      assert.equal(r.status, 200);
      const events = (await json<{ events: AuditEvent[] }>(r)).events;
      const missing = denied.filter((d) => !events.some((e) => e.requestId === d.requestId && e.outcome === 'deny' && (e.reason ?? '') !== ''));
      assert.deepEqual(
        missing.map((m) => m.what),
        [],
        'refusals without a deny event',
      );
      // And none of them left a success behind.
      const all = (await json<{ events: AuditEvent[] }>(await w.admin.get('/v1/audit/events?outcome=success&limit=1000'))).events;
      const ids = new Set(denied.map((d) => d.requestId));
      assert.deepEqual(
        all.filter((e) => e.requestId !== null && ids.has(e.requestId)).map((e) => e.action),
        [],
      );
    });
  });
}
