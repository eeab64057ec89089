// Session management: the caller's list of sessions (device, IP, last seen, current),
// ending one, logout-all (sessions, tokens_not_before, bus event), the session view's
// mfaAt, and idle/absolute expiry judged by the injected clock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import type { BusEvent } from '../../src/storage/index.ts';
import { BACKENDS, Client, expectOk, json, PASSWORD, type World, world } from '../helpers/server.ts';

interface SessionEntry {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  current: boolean;
  amr: string[];
  mfaAt: string | null;
}

async function sessionsOf(c: Client): Promise<SessionEntry[]> {
  return (await json<{ sessions: SessionEntry[] }>(await expectOk(await c.get('/v1/me/sessions')))).sessions;
}

async function signIn(base: string, username: string, userAgent: string): Promise<Client> {
  const c = new Client(base);
  const r = await fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': userAgent },
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  await expectOk(r);
  c.cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] ?? null;
  c.csrf = (await json<{ csrfToken: string }>(r)).csrfToken;
  return c;
}

for (const backend of BACKENDS) {
  describe(`sessions (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 1, 2, 8, 0, 0));
    before(async () => {
      w = await world(backend, { clock });
      for (const u of ['sam', 'tess', 'uma']) await expectOk(await w.admin.post('/v1/admin/users', { username: u, password: PASSWORD }));
    });
    after(() => w.server.close());

    test('a user sees their live sessions with device, IP, times and which one is current', async () => {
      const laptop = await signIn(w.server.url, 'sam', 'Laptop Browser/1.0');
      clock.advance(5 * 60_000);
      const phone = await signIn(w.server.url, 'sam', 'Phone Browser/2.0');
      const list = await sessionsOf(laptop);
      assert.equal(list.length, 2);
      const mine = list.filter((s) => s.current);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.userAgent, 'Laptop Browser/1.0');
      const other = list.find((s) => !s.current);
      assert.equal(other?.userAgent, 'Phone Browser/2.0');
      assert.equal(other?.createdAt, clock.now().toISOString());
      for (const s of list) {
        assert.match(s.id, /^ses_/);
        assert.ok(s.ip === '127.0.0.1' || s.ip === '::1' || s.ip === '::ffff:127.0.0.1', `ip ${s.ip}`);
        assert.deepEqual(s.amr, ['pwd']);
        assert.equal(s.mfaAt, null);
      }
      // Another user's sessions are not listed.
      assert.ok(!(await sessionsOf(w.as.viewer)).some((s) => list.some((x) => x.id === s.id)));
      // GET /v1/me tells the session's mfaAt (none for a password session).
      const me = await json<{ session: { id: string; mfaAt: string | null } }>(await phone.get('/v1/me'));
      assert.equal(me.session.mfaAt, null);
      assert.equal(me.session.id, other?.id);
    });

    test('ending another session of one\'s own kills it at once; another user\'s session id is not found', async () => {
      const a = await signIn(w.server.url, 'tess', 'A');
      const b = await signIn(w.server.url, 'tess', 'B');
      const bId = (await sessionsOf(b)).find((s) => s.current)?.id ?? '';
      // Someone else cannot end it, and learns nothing: 404.
      const foreign = await w.as.viewer.del(`/v1/me/sessions/${bId}`);
      assert.equal(foreign.status, 404);
      assert.equal((await b.get('/v1/me')).status, 200);
      const r = await a.del(`/v1/me/sessions/${bId}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('set-cookie'), null, 'ending another session leaves this cookie alone');
      assert.equal((await b.get('/v1/me')).status, 401);
      assert.equal((await a.get('/v1/me')).status, 200);
      assert.equal((await sessionsOf(a)).length, 1);
      // Ending the current one clears the cookie like logout.
      const aId = (await sessionsOf(a))[0]?.id ?? '';
      const self = await a.del(`/v1/me/sessions/${aId}`);
      assert.equal(self.status, 200);
      assert.match(self.headers.get('set-cookie') ?? '', /^modelkeep_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/);
      assert.equal(self.headers.get('clear-site-data'), '"cookies"');
      assert.equal((await a.get('/v1/me')).status, 401);
    });

    test('logout-all ends every session of the caller, stamps tokens_not_before and tells the bus', async () => {
      const events: BusEvent[] = [];
      const unsubscribe = w.server.services.bus.subscribe((e) => events.push(e));
      try {
        const clients = [await signIn(w.server.url, 'uma', '1'), await signIn(w.server.url, 'uma', '2'), await signIn(w.server.url, 'uma', '3')];
        const bystander = await signIn(w.server.url, 'tess', 'bystander');
        clock.advance(1000);
        const r = await clients[0]?.post('/v1/auth/logout-all');
        assert.equal(r?.status, 200);
        assert.equal((await json<{ sessionsEnded: number }>(r as Response)).sessionsEnded, 3);
        assert.equal(r?.headers.get('clear-site-data'), '"cookies"');
        for (const c of clients) assert.equal((await c.get('/v1/me')).status, 401);
        assert.equal((await bystander.get('/v1/me')).status, 200, 'other users keep their sessions');
        const row = await w.server.services.db.kysely.selectFrom('users').select(['id', 'tokens_not_before']).where('username', '=', 'uma').executeTakeFirstOrThrow();
        assert.equal(row.tokens_not_before, clock.now().toISOString());
        const ev = events.find((e) => e.type === 'user.sessions_revoked');
        assert.deepEqual(ev, { type: 'user.sessions_revoked', userId: row.id, at: clock.now() });
        assert.equal(events.filter((e) => e.type === 'session.revoked').length, 3);
        const audit = await json<{ events: { action: string; resource: string }[] }>(await w.admin.get('/v1/audit/events?action=auth.logout_all'));
        assert.ok(audit.events.some((e) => e.resource === 'user:uma'));
      } finally {
        unsubscribe();
      }
    });

    test('idle and absolute expiry are judged on the server clock; expired sessions leave the list', async () => {
      const c = await signIn(w.server.url, 'sam', 'idle-test');
      const other = await signIn(w.server.url, 'sam', 'busy-test');
      const before = (await sessionsOf(other)).length;
      clock.advance(31 * 60_000);
      // `other` is used now (it was idle 31 minutes too, so it is gone as well).
      assert.equal((await other.get('/v1/me')).status, 401);
      assert.equal((await c.get('/v1/me')).status, 401);
      const fresh = await signIn(w.server.url, 'sam', 'fresh');
      assert.ok((await sessionsOf(fresh)).length < before, 'idle sessions are no longer listed');
      // A busy session (a request every 20 minutes) still ends at 12 hours.
      for (let t = 0; t < 35; t++) {
        clock.advance(20 * 60_000);
        assert.equal((await fresh.get('/v1/me')).status, 200, `alive after ${(t + 1) * 20} minutes`);
      }
      clock.advance(20 * 60_000);
      assert.equal((await fresh.get('/v1/me')).status, 401, 'dead at 12 hours however busy');
    });
  });
}
