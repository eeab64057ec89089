// Anomaly detection end to end, on both backends: real HTTP requests write real audit
// events (client addresses through a trusted proxy's X-Forwarded-For), the detector engine
// tails the committed log, and each rule must fire on its pattern, once per incident, and
// stay quiet on normal traffic. Then: who may read and acknowledge alerts, /metrics behind
// its token, signed webhooks to a real local receiver, time-to-detect, and two detector
// engines on one database (two replicas) storing each incident once.
// Windows are driven by a ManualClock; waiting for the background loop is bounded polling.
import assert from 'node:assert/strict';
import { timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Alert, AlertStore, DetectorEngine, LocationResolver, type Rule, timeToDetect, webhookSignature } from '../../src/audit/index.ts';
import { ManualClock, type RequestContext } from '../../src/core/index.ts';
import { openDatabase } from '../../src/storage/index.ts';
import { BACKENDS, Client, expectOk, json, PASSWORD, startTestServer, type World, world } from '../helpers/server.ts';
import { buildMmdb } from './mmdb-writer.ts';

const SECRET = 'alert webhook secret for the tests';
const TOKEN = 'metrics-token-for-the-tests-0123456789';
const P = '/v1/projects/fraud';
const V = `${P}/models/churn/versions/1`;
const MIN = 60_000;

// Wednesday 7 January 2026, 15:00 UTC: 16:00 in Paris, 00:00 (Thursday) in Tokyo.
const START = Date.UTC(2026, 0, 7, 15, 0, 0);

const PARIS = { name: 'paris-office', cidrs: ['198.51.100.0/24', '2001:db8:1::/48'], country: 'FR', lat: 48.8566, lon: 2.3522 };
const SYDNEY = { name: 'sydney-office', cidrs: ['203.0.113.0/24'], country: 'AU', lat: -33.8688, lon: 151.2093 };

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A real webhook receiver on loopback. It answers 503 to the first attempt of each alert, so every delivery is retried once. */
async function startReceiver(): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['x-modelkeep-delivery']);
      const status = seen.has(id) ? 200 : 503;
      seen.add(id);
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/alerts`,
    deliveries,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Bounded polling: asks until `fn` gives a value or the deadline passes. */
async function until<T>(what: string, fn: () => Promise<T | null | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const backend of BACKENDS) {
  describe(`anomaly detection and alerts (${backend})`, () => {
    const clock = new ManualClock(START);
    let w: World;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let geoDir: string;

    const services = () => w.server.services;
    const detect = () => services().detectors.catchUp();
    const stored = async (f: (a: Alert) => boolean = () => true) => (await services().alerts.list({ limit: 1000 })).filter(f);
    const by = (rule: string, actor?: string | null) => (a: Alert) => a.rule === rule && (actor === undefined || a.actor === actor);

    /** Signs `username` in from `ip` (X-Forwarded-For through the trusted proxy on 127.0.0.1). */
    const loginFrom = async (username: string, ip?: string): Promise<Client> => {
      const r = await fetch(`${w.server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(ip ? { 'x-forwarded-for': ip } : {}) },
        body: JSON.stringify({ username, password: PASSWORD }),
      });
      await expectOk(r);
      const c = new Client(w.server.url);
      c.cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] ?? null;
      c.csrf = (await json<{ csrfToken: string }>(r)).csrfToken;
      return c;
    };
    const addUser = async (username: string, project?: string, role?: string) => {
      const admin = w.admin;
      await expectOk(await admin.post('/v1/admin/users', { username, password: PASSWORD }));
      if (project && role) await expectOk(await admin.post(`/v1/projects/${project}/bindings`, { principal: `user:${username}`, role }));
    };
    const download = async (c: Client, file: string, ip?: string) => {
      const r = await c.get(`${V}/artifacts/${file}`, ip ? { 'x-forwarded-for': ip } : {});
      assert.equal(r.status, 200, await r.clone().text());
      await r.arrayBuffer();
    };
    /** A denied attempt: a viewer may not create models (403, recorded as 'deny'). */
    const denied = async (c: Client, ip: string) => {
      const r = await c.post(`${P}/models`, { name: 'not-allowed' }, { 'x-forwarded-for': ip });
      assert.equal(r.status, 403);
    };

    before(async () => {
      receiver = await startReceiver();
      geoDir = mkdtempSync(join(tmpdir(), 'mk-geo-'));
      const geoipFile = join(geoDir, 'geo.mmdb');
      writeFileSync(
        geoipFile,
        buildMmdb([
          { cidr: '192.0.2.0/24', data: { country: { iso_code: 'DE' }, location: { latitude: 52.52, longitude: 13.405 } } },
          { cidr: '2001:db8:beef::/48', data: { country: { iso_code: 'JP' }, location: { latitude: 35.6762, longitude: 139.6503 } } },
        ]),
      );
      const hours = (timeZone: string) => ({ timeZone, days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], start: '09:00', end: '18:00' });
      w = await world(backend, {
        clock,
        config: {
          trustedProxies: ['127.0.0.1'],
          detectors: {
            zones: [PARIS, SYDNEY],
            geoipFile,
            offHours: { enabled: true, users: { owl: hours('Asia/Tokyo'), lark: hours('Europe/Paris') }, projects: { nightshift: hours('Asia/Tokyo') } },
            massDownload: { count: 5, bytes: 600_000, windowMinutes: 10 },
            denialBurst: { count: 5, windowMinutes: 5 },
          },
          alerts: { webhooks: [{ url: receiver.url, secret: SECRET }], webhookBackoffMs: 5, webhookRetries: 3 },
          metrics: { token: TOKEN },
        },
      });
      for (const [u, role] of [
        ['hoarder', 'data-scientist'],
        ['bulk', 'data-scientist'],
        ['prober', 'viewer'],
        ['p1', 'viewer'],
        ['p2', 'viewer'],
        ['prober2', 'viewer'],
        ['lark', 'viewer'],
      ] as const) {
        await addUser(u, 'fraud', role);
      }
      for (const u of ['owl', 'nightworker', 'traveller', 'v6user', 'globetrotter', 'commuter']) await addUser(u);
      const mle = w.as['ml-engineer'];
      await expectOk(await mle.post(`${P}/models`, { name: 'churn' }));
      await expectOk(await mle.post(`${P}/models/churn/versions`, {}));
      await expectOk(await mle.upload(`${V}/artifacts/small.bin`, 'x'.repeat(1000)));
      await expectOk(await mle.upload(`${V}/artifacts/big.bin`, new Uint8Array(300_000)));
      await expectOk(await mle.post(`${V}/finalize`));
    });
    after(async () => {
      await w.server.close();
      await receiver.close();
      rmSync(geoDir, { recursive: true, force: true });
    });

    test('normal traffic raises nothing', async () => {
      // The fixture (logins, projects, users, bindings, uploads) plus ordinary work.
      const ds = w.as['data-scientist'];
      await download(ds, 'small.bin');
      await download(ds, 'big.bin');
      assert.equal((await w.as.viewer.get(`${P}/models`)).status, 200);
      assert.equal((await w.as.auditor.get('/v1/audit/events?limit=5')).status, 200);
      await denied(w.as.viewer, '198.51.100.70');
      await denied(w.as.viewer, '198.51.100.70');
      await loginFrom('lark', '198.51.100.8'); // 16:00 in Paris: inside lark's hours
      await loginFrom('commuter', '198.51.100.20'); // first login: the baseline
      await loginFrom('commuter', '198.51.100.21');
      await loginFrom('commuter', '2001:db8:1::20'); // the same office over IPv6
      await detect();
      const head = await services().db.kysely.selectFrom('audit_head').select('next_seq').executeTakeFirstOrThrow();
      assert.equal(services().detectors.position, Number(head.next_seq) - 1, 'every event was judged');
      assert.deepEqual(await stored(), []);
    });

    test('off-hours: per user in their time zone, per project, once per window', async () => {
      await loginFrom('owl'); // 00:00 Thursday in Tokyo
      await detect();
      const owl = await stored(by('off-hours', 'owl'));
      assert.equal(owl.length, 1);
      assert.equal(owl[0]?.severity, 'medium');
      assert.equal(owl[0]?.details.timeZone, 'Asia/Tokyo');
      assert.equal(owl[0]?.details.localTime, 'thu 00:00');
      const again = await loginFrom('owl');
      assert.equal((await again.get('/v1/me')).status, 200);
      await loginFrom('owl');
      await detect();
      assert.equal((await stored(by('off-hours', 'owl'))).length, 1, 'one alert per user and window, not one per event');

      // Project hours: nobody has personal hours here, the project's are Tokyo's.
      const admin = await w.client('admin');
      await expectOk(await admin.post('/v1/projects', { name: 'nightshift' }));
      await expectOk(await admin.post('/v1/projects/nightshift/bindings', { principal: 'user:nightworker', role: 'viewer' }));
      const nw = await loginFrom('nightworker');
      await detect();
      assert.deepEqual(await stored(by('off-hours', 'nightworker')), [], 'logging in touches no project');
      assert.equal((await nw.get('/v1/projects/nightshift')).status, 200);
      await detect();
      const night = await stored(by('off-hours', 'nightworker'));
      assert.equal(night.length, 1);
      assert.equal(night[0]?.details.hoursOf, 'project nightshift');
      assert.ok(night[0]?.projectId);
      // Same hour, personal hours inside: lark stays quiet.
      await loginFrom('lark', '198.51.100.8');
      await detect();
      assert.deepEqual(await stored(by('off-hours', 'lark')), []);
    });

    test('mass download: N downloads or B bytes by one actor within the window, once per window', async () => {
      const hoarder = await w.client('hoarder');
      for (let i = 0; i < 4; i++) await download(hoarder, 'small.bin');
      await detect();
      assert.deepEqual(await stored(by('mass-download', 'hoarder')), [], 'four downloads stay under the threshold of five');
      await download(hoarder, 'small.bin');
      await detect();
      let hits = await stored(by('mass-download', 'hoarder'));
      assert.equal(hits.length, 1);
      assert.equal(hits[0]?.severity, 'high');
      assert.equal(hits[0]?.details.downloads, 5);
      assert.equal(hits[0]?.projectId, (await services().db.kysely.selectFrom('projects').select('id').where('name', '=', 'fraud').executeTakeFirstOrThrow()).id);
      for (let i = 0; i < 3; i++) await download(hoarder, 'small.bin');
      await detect();
      assert.equal((await stored(by('mass-download', 'hoarder'))).length, 1, 'the same burst is one alert');

      clock.advance(11 * MIN);
      for (let i = 0; i < 5; i++) await download(hoarder, 'small.bin');
      await detect();
      hits = await stored(by('mass-download', 'hoarder'));
      assert.equal(hits.length, 2, 'a burst in a later window is a new incident');

      const bulk = await w.client('bulk');
      await download(bulk, 'big.bin');
      await detect();
      assert.deepEqual(await stored(by('mass-download', 'bulk')), []);
      await download(bulk, 'big.bin');
      await detect();
      const bytes = await stored(by('mass-download', 'bulk'));
      assert.equal(bytes.length, 1);
      assert.equal(bytes[0]?.details.bytes, 600_000);
      assert.equal(bytes[0]?.details.downloads, 2);
    });

    test('denial bursts: by one actor, and by one address across accounts', async () => {
      const prober = await w.client('prober');
      for (let i = 0; i < 4; i++) await denied(prober, '198.51.100.60');
      await detect();
      assert.deepEqual(await stored(by('denial-burst', 'prober')), []);
      await denied(prober, '198.51.100.60');
      await detect();
      const hit = await stored(by('denial-burst', 'prober'));
      assert.equal(hit.length, 1);
      assert.equal(hit[0]?.details.denials, 5);
      assert.equal(hit[0]?.details.by, 'actor');
      for (let i = 0; i < 3; i++) await denied(prober, '198.51.100.60');
      await detect();
      assert.equal((await stored(by('denial-burst', 'prober'))).length, 1);
      // The address of a single prober is that prober's burst: no second alert for it.
      assert.deepEqual(await stored((a) => a.rule === 'denial-burst' && a.details.ip === '198.51.100.60' && a.details.by === 'ip'), []);

      // Two accounts, three refusals each, from one address: no account reaches five, the address does.
      const p1 = await w.client('p1');
      const p2 = await w.client('p2');
      for (let i = 0; i < 3; i++) {
        await denied(p1, '203.0.113.99');
        await denied(p2, '203.0.113.99');
      }
      await detect();
      assert.deepEqual(await stored((a) => a.rule === 'denial-burst' && (a.actor === 'p1' || a.actor === 'p2')), []);
      const ip = await stored((a) => a.rule === 'denial-burst' && a.details.by === 'ip');
      assert.equal(ip.length, 1);
      assert.equal(ip[0]?.details.ip, '203.0.113.99');
      assert.equal(ip[0]?.details.accounts, 2);
      assert.equal(ip[0]?.actor, null);
    });

    test('new network zone and impossible travel (CIDR zones over IPv4 and IPv6, and a GeoIP database)', async () => {
      await loginFrom('traveller', '198.51.100.7');
      await loginFrom('traveller', '198.51.100.9');
      await detect();
      assert.deepEqual(await stored((a) => a.actor === 'traveller'), [], 'the first zone is the baseline');
      clock.advance(60 * MIN);
      await loginFrom('traveller', '203.0.113.5');
      await detect();
      const nz = await stored(by('new-zone', 'traveller'));
      assert.equal(nz.length, 1);
      assert.equal(nz[0]?.details.zone, 'sydney-office');
      assert.deepEqual(nz[0]?.details.knownZones, ['paris-office']);
      const tr = await stored(by('impossible-travel', 'traveller'));
      assert.equal(tr.length, 1);
      assert.equal(tr[0]?.severity, 'high');
      const km = Number(tr[0]?.details.distanceKm);
      assert.ok(km > 16_900 && km < 17_000, String(km));
      assert.ok(Number(tr[0]?.details.speedKmh) > 900);
      await loginFrom('traveller', '203.0.113.6');
      await detect();
      assert.equal((await stored((a) => a.actor === 'traveller')).length, 2, 'a zone once seen is not new again');

      // GeoIP: Berlin (IPv4) then Tokyo (IPv6) two hours later, about 4,450 km/h.
      await loginFrom('globetrotter', '192.0.2.10');
      clock.advance(2 * 60 * MIN);
      await loginFrom('globetrotter', '2001:db8:beef::1');
      await detect();
      assert.equal((await stored(by('new-zone', 'globetrotter')))[0]?.details.zone, 'geo:JP');
      assert.equal((await stored(by('impossible-travel', 'globetrotter'))).length, 1);

      // Paris (IPv6) then Sydney a day later: a new zone, but a plausible flight.
      await loginFrom('v6user', '2001:db8:1::10');
      clock.advance(24 * 60 * MIN);
      await loginFrom('v6user', '203.0.113.20');
      await detect();
      assert.equal((await stored(by('new-zone', 'v6user'))).length, 1);
      assert.deepEqual(await stored(by('impossible-travel', 'v6user')), []);
    });

    test('refresh-token reuse and break-glass raise high alerts, found by the polling loop', async () => {
      const u = await services().db.kysely.selectFrom('users').select(['id', 'username']).where('username', '=', 'hoarder').executeTakeFirstOrThrow();
      const ctx = (): RequestContext => ({
        requestId: 'req_detector_test',
        principal: { kind: 'user', id: u.id, username: u.username, sessionId: null, amr: ['pwd'], authTime: clock.now(), mfaAt: null, authMethod: 'session', scopes: null },
        ip: null,
        userAgent: null,
        now: clock.now(),
      });
      // The identity and governance layers will emit these; here they are written through the real audit log.
      await services().audit.record(ctx(), { action: 'auth.refresh_reuse', outcome: 'deny', resource: 'token-family:fam_1', details: { familyId: 'fam_1' } });
      await services().audit.record(ctx(), { action: 'auth.refresh_reuse', outcome: 'deny', resource: 'token-family:fam_1', details: { familyId: 'fam_1' } });
      await services().audit.record(ctx(), { action: 'governance.break_glass', outcome: 'success', resource: 'project:fraud' });
      await services().audit.record(ctx(), { action: 'governance.break_glass', outcome: 'success', resource: 'project:fraud' });
      // No catchUp: the engine's own poll (every 200 ms) must find them.
      const admin = await w.client('admin');
      const seen = await until('both alerts over HTTP', async () => {
        const list = (await json<{ alerts: Alert[] }>(await admin.get('/v1/alerts?limit=1000'))).alerts;
        const reuse = list.filter(by('refresh-token-reuse'));
        const glass = list.filter(by('break-glass'));
        return reuse.length >= 1 && glass.length >= 2 ? { reuse, glass } : null;
      });
      await detect();
      assert.equal((await stored(by('refresh-token-reuse'))).length, 1, 'one alert per token family');
      assert.equal((await stored(by('break-glass'))).length, 2, 'every break-glass use is reviewed');
      for (const a of [...seen.reuse, ...seen.glass]) {
        assert.equal(a.severity, 'high');
        assert.equal(a.actor, 'hoarder');
      }
    });

    test('two detector engines on one database (two replicas) store each incident once', async () => {
      const db2 = await openDatabase({ dataDir: w.server.dataDir, databaseUrl: w.server.databaseUrl });
      const store2 = new AlertStore(db2.kysely);
      const cfg = services().config.detectors;
      const engine2 = new DetectorEngine({ db: db2.kysely, alerts: store2, clock, config: cfg, resolver: LocationResolver.fromConfig(cfg) });
      const told: Alert[] = [];
      const off1 = services().alerts.onAlert((a) => told.push(a));
      const off2 = store2.onAlert((a) => told.push(a));
      // As main.ts wires every replica: the replica that stores an alert sends its webhooks.
      const off3 = store2.onAlert((a) => services().alertWebhooks.enqueue(a));
      try {
        await engine2.start();
        await detect();
        const prober2 = await w.client('prober2');
        for (let i = 0; i < 5; i++) await denied(prober2, '198.51.100.61');
        await Promise.all([detect(), engine2.catchUp()]);
        await Promise.all([detect(), engine2.catchUp()]);
        assert.equal(engine2.position, services().detectors.position);
        assert.equal((await stored(by('denial-burst', 'prober2'))).length, 1);
        assert.equal(told.filter(by('denial-burst', 'prober2')).length, 1, 'only the engine that stored it tells the webhooks');
      } finally {
        off1();
        off2();
        off3();
        await engine2.stop();
        await db2.close();
      }
    });

    test('GET /v1/alerts and acknowledge: guard-checked, project-scoped, once, audited', async () => {
      const viewer = await w.client('viewer');
      const outsider = await w.client('outsider');
      const auditor = await w.client('auditor');
      const admin = await w.client('admin');
      assert.equal((await viewer.get('/v1/alerts')).status, 403);
      assert.equal((await outsider.get('/v1/alerts')).status, 403);
      assert.equal((await fetch(`${w.server.url}/v1/alerts`)).status, 401);
      await detect();

      const fraud = (await services().db.kysely.selectFrom('projects').select('id').where('name', '=', 'fraud').executeTakeFirstOrThrow()).id;
      const mine = (await json<{ alerts: Alert[] }>(await expectOk(await auditor.get('/v1/alerts?limit=1000')))).alerts;
      const expected = await stored((a) => a.projectId === fraud);
      assert.ok(expected.length >= 4);
      assert.deepEqual(mine.map((a) => a.id).sort(), expected.map((a) => a.id).sort(), 'an auditor sees the alerts of their projects, nothing else');
      const all = (await json<{ alerts: Alert[] }>(await expectOk(await admin.get('/v1/alerts?limit=1000')))).alerts;
      assert.equal(all.length, (await stored()).length, 'a platform-admin sees every alert');
      assert.ok(all.some((a) => a.rule === 'new-zone'));
      assert.equal((await json<{ alerts: Alert[] }>(await admin.get('/v1/alerts?limit=1'))).alerts.length, 1);
      assert.equal((await admin.get('/v1/alerts?limit=0')).status, 422);
      assert.equal((await admin.get('/v1/alerts?unacknowledged=maybe')).status, 422);

      const target = expected.find((a) => a.rule === 'mass-download');
      assert.ok(target);
      assert.equal((await viewer.post(`/v1/alerts/${target.id}/acknowledge`)).status, 403);
      const ack = await auditor.post(`/v1/alerts/${target.id}/acknowledge`);
      assert.equal(ack.status, 200, await ack.clone().text());
      const acked = (await json<{ alert: Alert }>(ack)).alert;
      assert.equal(acked.acknowledgedBy, 'auditor');
      assert.equal(acked.acknowledgedAt, clock.now().toISOString());
      assert.equal((await auditor.post(`/v1/alerts/${target.id}/acknowledge`)).status, 409, 'acknowledged once');
      const open = (await json<{ alerts: Alert[] }>(await auditor.get('/v1/alerts?unacknowledged=true&limit=1000'))).alerts;
      assert.ok(!open.some((a) => a.id === target.id));
      assert.equal(open.length, mine.length - 1);

      const events = (
        await json<{ events: { actor: string; action: string; outcome: string; resource: string; details: Record<string, unknown> }[] }>(
          await admin.get('/v1/audit/events?action=alert.acknowledge&limit=1000'),
        )
      ).events;
      assert.equal(events.length, 1, 'the state change has its own audit event');
      assert.equal(events[0]?.actor, 'auditor');
      assert.equal(events[0]?.resource, `alert:${target.id}`);
      assert.equal(events[0]?.details.rule, 'mass-download');

      // A platform-wide alert (a user's new zone) is not the project auditor's to see or touch.
      const platformWide = (await stored(by('new-zone')))[0];
      assert.ok(platformWide);
      assert.equal((await auditor.post(`/v1/alerts/${platformWide.id}/acknowledge`)).status, 404);
      assert.equal((await auditor.post('/v1/alerts/alr_doesnotexist/acknowledge')).status, 404);
      assert.equal((await auditor.post('/v1/alerts/..%2f..%2fetc/acknowledge')).status, 404);
      assert.equal((await admin.post(`/v1/alerts/${platformWide.id}/acknowledge`)).status, 200);
    });

    test('/metrics: 401 without a token, 403 with a wrong one, counters with the right one; 404 when unconfigured', async () => {
      assert.equal((await fetch(`${w.server.url}/metrics`)).status, 401);
      assert.equal((await fetch(`${w.server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status, 403);
      assert.equal((await fetch(`${w.server.url}/metrics`, { headers: { authorization: `Basic ${TOKEN}` } })).status, 401);
      const r = await fetch(`${w.server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await r.text();
      assert.match(text, /^# TYPE modelkeep_alerts_total counter$/m);
      const count = (rule: string) => Number(new RegExp(`^modelkeep_alerts_total\\{rule="${rule}",severity="high"\\} (\\d+)$`, 'm').exec(text)?.[1]);
      assert.equal(count('mass-download'), 3);
      assert.equal(count('break-glass'), 2);
      const head = await services().db.kysely.selectFrom('audit_head').select('next_seq').executeTakeFirstOrThrow();
      const events = Number(/^modelkeep_audit_events_total (\d+)$/m.exec(text)?.[1]);
      assert.ok(events > 0 && events <= Number(head.next_seq) - 1);
      assert.match(text, /^modelkeep_time_to_detect_seconds\{quantile="0\.5"\} [0-9.e-]+$/m);
      assert.match(text, /^modelkeep_time_to_detect_seconds\{quantile="0\.99"\} [0-9.e-]+$/m);

      const bare = await startTestServer(backend);
      try {
        assert.equal((await fetch(`${bare.url}/metrics`)).status, 404);
        assert.equal((await fetch(`${bare.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
      } finally {
        await bare.close();
      }
    });

    test('webhook: every alert is POSTed, HMAC-signed like witness webhooks, and retried after a failure', async () => {
      await detect();
      await services().alertWebhooks.idle();
      const alerts = await stored();
      assert.ok(alerts.length >= 10);
      for (const a of alerts) {
        const attempts = receiver.deliveries.filter((d) => d.headers['x-modelkeep-delivery'] === a.id);
        assert.deepEqual(
          attempts.map((d) => d.status),
          [503, 200],
          `alert ${a.rule}: retried once after the 503`,
        );
        for (const d of attempts) {
          const ts = String(d.headers['x-modelkeep-timestamp']);
          assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 300, 'a fresh timestamp');
          const want = Buffer.from(`sha256=${webhookSignature(SECRET, ts, d.body)}`);
          const got = Buffer.from(String(d.headers['x-modelkeep-signature']));
          assert.ok(got.length === want.length && timingSafeEqual(got, want), 'signature verifies');
          assert.equal(d.headers['content-type'], 'application/json');
          const body = JSON.parse(d.body) as { type: string; alert: Alert };
          assert.equal(body.type, 'alert');
          assert.equal(body.alert.id, a.id);
          assert.equal(body.alert.rule, a.rule);
          assert.equal(body.alert.eventSeq, a.eventSeq);
        }
      }
      // A forged body does not verify under the same headers.
      const d = receiver.deliveries[0];
      assert.ok(d);
      const forged = webhookSignature(SECRET, String(d.headers['x-modelkeep-timestamp']), d.body.replace('"severity":"', '"severity":"x'));
      assert.notEqual(`sha256=${forged}`, d.headers['x-modelkeep-signature']);
    });

    test('time-to-detect is recorded per alert and summarised for the bench', async () => {
      const alerts = await stored();
      for (const a of alerts) {
        assert.equal(typeof a.details.timeToDetectMs, 'number', a.rule);
        assert.ok(Number(a.details.timeToDetectMs) >= 0);
        assert.ok(Date.parse(a.createdAt) >= Date.parse(a.eventTime));
        assert.ok(a.eventSeq !== null && a.eventSeq > 0);
      }
      const ttd = await timeToDetect(services().db.kysely);
      assert.equal(ttd.count, alerts.length);
      assert.ok(ttd.p50Seconds !== null && ttd.p50Seconds >= 0);
      assert.ok(ttd.p99Seconds !== null && ttd.p99Seconds >= ttd.p50Seconds);
    });

    // Last: it corrupts a row of this world's log on purpose.
    test('a failing lookup is retried without counting twice; a broken rule or an unreadable event does not stop detection', async () => {
      const observed: number[] = [];
      let failures = 2;
      const flaky: Rule = {
        name: 'flaky',
        prepare: async (e) => {
          if (e.action === 'test.flaky' && failures-- > 0) throw new Error('storage away');
        },
        observe: () => [],
      };
      const boom: Rule = {
        name: 'boom',
        observe: () => {
          throw new Error('rule bug');
        },
      };
      const spy: Rule = {
        name: 'spy',
        observe: (e) => {
          if (e.action.startsWith('test.')) observed.push(e.seq);
          return [];
        },
      };
      const cfg = services().config.detectors;
      const engine = new DetectorEngine({
        db: services().db.kysely,
        alerts: services().alerts,
        clock,
        config: cfg,
        resolver: LocationResolver.fromConfig(cfg),
        rules: [flaky, boom, spy],
      });
      const errors: unknown[] = [];
      engine.onError = (err) => errors.push(err);
      await engine.start();
      try {
        const ctx: RequestContext = { requestId: 'req_robust', principal: { kind: 'anonymous' }, ip: null, userAgent: null, now: clock.now() };
        const a = await services().audit.record(ctx, { action: 'test.flaky', outcome: 'success' });
        const b = await services().audit.record(ctx, { action: 'test.corrupt', outcome: 'success' });
        const c = await services().audit.record(ctx, { action: 'test.after', outcome: 'success' });
        await services().db.kysely.updateTable('audit_events').set({ details: '{not json' }).where('seq', '=', b).execute();
        await assert.rejects(engine.catchUp(), /storage away/);
        await assert.rejects(engine.catchUp(), /storage away/);
        await engine.catchUp();
        assert.deepEqual(observed, [a, c], 'each readable event observed once, the unreadable one skipped');
        assert.equal(engine.position, c);
        assert.ok(errors.some((e) => e instanceof Error && e.message === 'rule bug'));
        assert.ok(errors.some((e) => e instanceof SyntaxError));
      } finally {
        await engine.stop();
      }
    });
  });
}
