// MC-SES-02 — CSRF on state-changing console actions. With a valid session cookie, a
// request without this session's CSRF token, from another origin or site, or with a body
// type a cross-site form can produce is refused (403 csrf_failed, or 415 for a non-JSON
// type sent with the token) and changes nothing; only the same-origin request with the
// token succeeds. Login refuses form and text bodies and cross-site requests.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorOf, type RawResponse, raw, rawSocket } from '../helpers/raw-http.ts';
import { BACKENDS, type Client, json, PASSWORD, type World, world } from '../helpers/server.ts';

interface Action {
  name: string;
  /** The signed-in user who acts (one of the world's users). */
  user: 'ml-engineer' | 'project-admin' | 'admin';
  path: string;
  body: Record<string, string>;
  /** Throws unless the action has not happened. */
  unchanged: () => Promise<void>;
  /** Throws unless the action has happened. */
  changed: () => Promise<void>;
}

interface Variant {
  name: string;
  /** 'own' = this session's token; null = no header; any other string is sent as is. */
  token: 'own' | 'other-user' | 'other-session' | null | string;
  contentType?: string;
  encode?: 'json' | 'form';
  extra?: Record<string, string>;
  status: number;
  code: string;
}

const PROMOTE = '/v1/projects/fraud/models/csrf-m/versions/1/promote';

const NON_JSON_TYPES: readonly [string, 'json' | 'form'][] = [
  ['application/x-www-form-urlencoded', 'form'],
  ['text/plain', 'json'],
  ['text/plain;charset=UTF-8', 'json'],
  ['multipart/form-data; boundary=x', 'json'],
  ['application/json;', 'json'],
  ['Application/JSON', 'json'],
  ['application/json\tx', 'json'],
  ['application/json; charset=latin1', 'json'],
  ['application/jsonx', 'json'],
  ['application/json, text/plain', 'json'],
];

const VARIANTS: readonly Variant[] = [
  { name: 'no CSRF header', token: null, status: 403, code: 'csrf_failed' },
  { name: 'an empty CSRF header', token: '', status: 403, code: 'csrf_failed' },
  { name: 'a made-up CSRF token', token: 'x'.repeat(43), status: 403, code: 'csrf_failed' },
  { name: "another user's CSRF token", token: 'other-user', status: 403, code: 'csrf_failed' },
  { name: "the token of another session of the same user", token: 'other-session', status: 403, code: 'csrf_failed' },
  { name: 'Origin https://evil.net (with the valid token)', token: 'own', extra: { origin: 'https://evil.net' }, status: 403, code: 'csrf_failed' },
  { name: 'Origin null (with the valid token)', token: 'own', extra: { origin: 'null' }, status: 403, code: 'csrf_failed' },
  { name: 'Sec-Fetch-Site cross-site (with the valid token)', token: 'own', extra: { 'sec-fetch-site': 'cross-site' }, status: 403, code: 'csrf_failed' },
  { name: 'Sec-Fetch-Site same-site (with the valid token)', token: 'own', extra: { 'sec-fetch-site': 'same-site' }, status: 403, code: 'csrf_failed' },
  ...NON_JSON_TYPES.flatMap(([type, encode]): Variant[] => [
    { name: `Content-Type ${JSON.stringify(type)} with the valid token`, token: 'own', contentType: type, encode, status: 415, code: 'unsupported_media_type' },
    { name: `Content-Type ${JSON.stringify(type)} without a token`, token: null, contentType: type, encode, status: 403, code: 'csrf_failed' },
  ]),
];

for (const backend of BACKENDS) {
  describe(`MC-SES-02 CSRF on state-changing requests (${backend})`, () => {
    let w: World;
    /** A second session of each acting user, for the "other session's token" variant. */
    const second = new Map<string, Client>();

    before(async () => {
      w = await world(backend);
      const mle = w.as['ml-engineer'];
      assert.equal((await mle.post('/v1/projects/fraud/models', { name: 'csrf-m' })).status, 201);
      assert.equal((await mle.post('/v1/projects/fraud/models/csrf-m/versions', {})).status, 201);
      assert.equal((await mle.upload('/v1/projects/fraud/models/csrf-m/versions/1/artifacts/m.bin', 'w')).status, 201);
      assert.equal((await mle.post('/v1/projects/fraud/models/csrf-m/versions/1/finalize')).status, 200);
      assert.equal((await w.admin.post('/v1/admin/users', { username: 'csrf-victim', password: PASSWORD })).status, 201);
      for (const u of ['ml-engineer', 'project-admin', 'admin']) second.set(u, await w.client(u));
    });
    after(() => w.server.close());

    const stage = async () => (await json<{ stage: string }>(await w.as.viewer.get('/v1/projects/fraud/models/csrf-m/versions/1'))).stage;
    const victimBound = async () =>
      (await json<{ bindings: { principal: string }[] }>(await w.admin.get('/v1/projects/fraud/bindings'))).bindings.some((b) => b.principal === 'user:csrf-victim');
    const userExists = async () => (await json<{ users: { username: string }[] }>(await w.admin.get('/v1/admin/users'))).users.some((u) => u.username === 'csrf-made-user');

    const ACTIONS: readonly Action[] = [
      {
        name: 'promote a version',
        user: 'ml-engineer',
        path: PROMOTE,
        body: { stage: 'staging' },
        unchanged: async () => assert.equal(await stage(), 'none'),
        changed: async () => assert.equal(await stage(), 'staging'),
      },
      {
        name: 'create a model',
        user: 'ml-engineer',
        path: '/v1/projects/fraud/models',
        body: { name: 'csrf-made' },
        unchanged: async () => assert.equal((await w.as.viewer.get('/v1/projects/fraud/models/csrf-made')).status, 404),
        changed: async () => assert.equal((await w.as.viewer.get('/v1/projects/fraud/models/csrf-made')).status, 200),
      },
      {
        name: 'create a binding',
        user: 'project-admin',
        path: '/v1/projects/fraud/bindings',
        body: { principal: 'user:csrf-victim', role: 'release-manager' },
        unchanged: async () => assert.equal(await victimBound(), false),
        changed: async () => assert.equal(await victimBound(), true),
      },
      {
        name: 'create a user',
        user: 'admin',
        path: '/v1/admin/users',
        body: { username: 'csrf-made-user' },
        unchanged: async () => assert.equal(await userExists(), false),
        changed: async () => assert.equal(await userExists(), true),
      },
    ];

    const clientOf = (a: Action): Client => (a.user === 'admin' ? w.admin : w.as[a.user]);

    const send = async (a: Action, v: Variant): Promise<RawResponse> => {
      const c = clientOf(a);
      const token =
        v.token === 'own' ? c.csrf : v.token === 'other-user' ? w.as.viewer.csrf : v.token === 'other-session' ? (second.get(a.user)?.csrf ?? null) : v.token;
      const encode = v.encode ?? 'json';
      const body = encode === 'form' ? new URLSearchParams(a.body).toString() : JSON.stringify(a.body);
      return raw(w.server.url, {
        method: 'POST',
        path: a.path,
        headers: {
          cookie: c.cookie ?? '',
          'content-type': v.contentType ?? 'application/json',
          ...(token !== null ? { 'x-csrf-token': token } : {}),
          ...v.extra,
        },
        body,
      });
    };

    for (const a of ACTIONS) {
      for (const v of VARIANTS) {
        test(`${a.name} with ${v.name} → ${v.status} ${v.code}, nothing changes`, async () => {
          const r = await send(a, v);
          assert.equal(r.status, v.status, r.text);
          assert.equal(errorOf(r).code, v.code);
          await a.unchanged();
        });
      }

      test(`${a.name}: the token in the query string or the body instead of the header → 403`, async () => {
        const c = clientOf(a);
        for (const [path, body] of [
          [`${a.path}?csrfToken=${encodeURIComponent(c.csrf ?? '')}`, a.body],
          [a.path, { ...a.body, csrfToken: c.csrf ?? '' }],
        ] as const) {
          const r = await raw(w.server.url, { method: 'POST', path, headers: { cookie: c.cookie ?? '', 'content-type': 'application/json' }, body: JSON.stringify(body) });
          assert.equal(r.status, 403, r.text);
          assert.equal(errorOf(r).code, 'csrf_failed');
        }
        await a.unchanged();
      });

      test(`${a.name}: ' application/json' (leading whitespace is HTTP OWS) gains nothing`, async () => {
        const c = clientOf(a);
        // RFC 9110 §5.5: whitespace around a field value is not part of it, and Node's
        // parser strips it before any application code (even rawHeaders) sees the header:
        // the server cannot tell this from application/json. What must hold is that it
        // opens no door: without the token it is refused, and the body schema still applies.
        const noToken = await raw(w.server.url, { method: 'POST', path: a.path, headers: { cookie: c.cookie ?? '', 'content-type': ' application/json' }, body: JSON.stringify(a.body) });
        assert.equal(noToken.status, 403, noToken.text);
        assert.equal(errorOf(noToken).code, 'csrf_failed');
        const badBody = await raw(w.server.url, {
          method: 'POST',
          path: a.path,
          headers: { cookie: c.cookie ?? '', 'x-csrf-token': c.csrf ?? '', 'content-type': ' application/json' },
          body: JSON.stringify(Object.fromEntries(Object.keys(a.body).map((k) => [k, ['not', 'valid']]))),
        });
        assert.equal(badBody.status, 422, badBody.text);
        // Folded onto a continuation line (obs-fold), the header never reaches the application.
        const folded = await rawSocket(
          w.server.url,
          Buffer.from(
            `POST ${a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${c.cookie}\r\nX-CSRF-Token: ${c.csrf}\r\nContent-Type:\r\n application/json\r\n` +
              `Content-Length: ${Buffer.byteLength(JSON.stringify(a.body))}\r\nConnection: close\r\n\r\n${JSON.stringify(a.body)}`,
          ),
        );
        assert.ok(folded.status >= 400 && folded.status < 500, folded.text.slice(0, 200));
        await a.unchanged();
      });
    }

    test('a same-origin request with the valid token succeeds (the refusals above were not a broken route)', async () => {
      for (const a of ACTIONS) {
        await a.unchanged();
        const c = clientOf(a);
        const r = await raw(w.server.url, {
          method: 'POST',
          path: a.path,
          headers: {
            cookie: c.cookie ?? '',
            'x-csrf-token': c.csrf ?? '',
            'content-type': 'application/json',
            origin: w.server.url,
            'sec-fetch-site': 'same-origin',
          },
          body: JSON.stringify(a.body),
        });
        assert.ok(r.status === 200 || r.status === 201, `${a.name}: ${r.status} ${r.text}`);
        await a.changed();
      }
      // And so does the charset form our clients may send.
      const c = w.as['ml-engineer'];
      const r = await raw(w.server.url, {
        method: 'POST',
        path: '/v1/projects/fraud/models',
        headers: { cookie: c.cookie ?? '', 'x-csrf-token': c.csrf ?? '', 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ name: 'csrf-charset' }),
      });
      assert.equal(r.status, 201, r.text);
    });

    test('login refuses text/plain and form bodies (415) and cross-site requests (403), and sets no cookie', async () => {
      const creds = { username: 'viewer', password: PASSWORD };
      const cases: [string, Record<string, string>, string, number, string][] = [
        ['text/plain carrying JSON', { 'content-type': 'text/plain' }, JSON.stringify(creds), 415, 'unsupported_media_type'],
        ['a form body', { 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams(creds).toString(), 415, 'unsupported_media_type'],
        ['multipart', { 'content-type': 'multipart/form-data; boundary=x' }, JSON.stringify(creds), 415, 'unsupported_media_type'],
        ['Sec-Fetch-Site cross-site', { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }, JSON.stringify(creds), 403, 'csrf_failed'],
        ['Origin https://evil.net', { 'content-type': 'application/json', origin: 'https://evil.net' }, JSON.stringify(creds), 403, 'csrf_failed'],
      ];
      for (const [name, headers, body, status, code] of cases) {
        const r = await raw(w.server.url, { method: 'POST', path: '/v1/auth/login', headers, body });
        assert.equal(r.status, status, `${name}: ${r.text}`);
        assert.equal(errorOf(r).code, code, name);
        assert.equal(r.headers['set-cookie'], undefined, `${name}: no session cookie`);
      }
      const ok = await raw(w.server.url, {
        method: 'POST',
        path: '/v1/auth/login',
        headers: { 'content-type': 'application/json', origin: w.server.url, 'sec-fetch-site': 'same-origin' },
        body: JSON.stringify(creds),
      });
      assert.equal(ok.status, 200, ok.text);
      assert.ok(ok.headers['set-cookie']);
    });
  });
}
