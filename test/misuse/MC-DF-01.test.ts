// MC-DF-01 — user_code brute force at the verification page (RFC 8628 s5.1, s6.1; ASVS 5.0
// 6.6.3). Codes are 8 characters of a 20-letter alphabet (~34.5 bits). Wrong guesses get one
// generic answer (unknown, used and expired codes alike: no oracle); after 10 per session
// (50 per address) in 15 minutes, 429 with Retry-After — even for the right code, so the
// limit cannot be probed. Case and hyphen variants are normalised, and each counts as a
// guess. After the window (injected clock) the right code works again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { USER_CODE_ALPHABET } from '../../src/identity/tokens/index.ts';
import { CLI, DEVICE_GRANT, form, startDevice } from '../helpers/oauth.ts';
import { BACKENDS, type Client, json, type World, world } from '../helpers/server.ts';

const PER_SESSION = 10;
const PER_IP = 50;
const WINDOW_MS = 15 * 60_000;

/** A well-formed code that is not `avoid`. */
function wrongCode(i: number, avoid: string): string {
  let s = '';
  let x = i + 1;
  for (let k = 0; k < 8; k++) {
    s += USER_CODE_ALPHABET[x % USER_CODE_ALPHABET.length];
    x = Math.floor(x / USER_CODE_ALPHABET.length) + 7 * k;
  }
  return s === avoid.replace('-', '') ? wrongCode(i + 1000, avoid) : `${s.slice(0, 4)}-${s.slice(4)}`;
}

for (const backend of BACKENDS) {
  describe(`MC-DF-01 user_code guessing (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock, config: { tokens: { deviceCodeMinutes: 60 } } });
    });
    after(() => w.server.close());

    const lookup = (c: Client, code: string) => c.get(`/v1/auth/device?userCode=${encodeURIComponent(code)}`);
    const approve = (c: Client, code: string) => c.post('/v1/auth/device/approve', { userCode: code });
    const generic = async (r: Response, what: string) => {
      assert.equal(r.status, 422, what);
      const e = await json<{ error: { code: string; message: string } }>(r);
      assert.equal(e.error.code, 'invalid_input', what);
      return e.error.message;
    };

    test('wrong codes get one generic answer, then 429 with Retry-After for every code, the right one included; variants count', async () => {
      const d = await startDevice(w.server.url);
      const other = await startDevice(w.server.url);
      const c = await w.client('viewer');
      // An already-used code answers exactly like an unknown one.
      assert.equal((await approve(c, other.user_code)).status, 200);
      const messages = new Set<string>();
      messages.add(await generic(await lookup(c, other.user_code), 'used code'));
      const wrong = wrongCode(1, d.user_code);
      // The same wrong code in case and hyphen variants: normalised, and each one a guess.
      const variants = [wrong, wrong.toLowerCase(), wrong.replace('-', ''), wrong.toLowerCase().replace('-', ''), ` ${wrong} `];
      for (const v of variants) messages.add(await generic(await lookup(c, v), `variant ${v}`));
      // Malformed input (outside the alphabet) is a guess too, with the same answer.
      messages.add(await generic(await approve(c, 'AAAA-AAAA'), 'vowels'));
      for (let i = 2; i < PER_SESSION - variants.length; i++) messages.add(await generic(await approve(c, wrongCode(i, d.user_code)), `guess ${i}`));
      assert.equal(messages.size, 1, 'one generic message for used, unknown and malformed codes');
      // The session has used its 10 guesses: now everything is throttled, the right code too.
      for (const code of [wrongCode(99, d.user_code), d.user_code, d.user_code.toLowerCase()]) {
        const r = await lookup(c, code);
        assert.equal(r.status, 429, `throttled lookup of ${code}`);
        const after0 = Number(r.headers.get('retry-after'));
        assert.ok(after0 > 0 && after0 <= WINDOW_MS / 1000, `Retry-After ${after0}`);
        assert.equal((await approve(c, code)).status, 429, `throttled approve of ${code}`);
      }
      // The code was not approved meanwhile.
      const p = await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: CLI });
      assert.equal((await json<{ error: string }>(p)).error, 'authorization_pending');
      // After the window, the right code, typed in lower case without the hyphen, works.
      clock.advance(WINDOW_MS + 1000);
      const c2 = await w.client('viewer');
      const ok = await approve(c2, d.user_code.toLowerCase().replace('-', ''));
      assert.equal(ok.status, 200, await ok.clone().text());
      clock.advance(10_000);
      const t = await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: CLI });
      assert.equal(t.status, 200, await t.clone().text());
    });

    test('guesses spread over fresh sessions from one address hit the per-address limit', async () => {
      clock.advance(WINDOW_MS + 1000);
      const d = await startDevice(w.server.url);
      let guesses = 0;
      let throttledAt = -1;
      for (let s = 0; s < Math.ceil(PER_IP / PER_SESSION) + 1 && throttledAt < 0; s++) {
        const c = await w.client(s % 2 === 0 ? 'viewer' : 'auditor');
        for (let i = 0; i < PER_SESSION - 1; i++) {
          const r = await lookup(c, wrongCode(guesses + 500, d.user_code));
          if (r.status === 429) {
            throttledAt = guesses;
            assert.ok(Number(r.headers.get('retry-after')) > 0);
            break;
          }
          await generic(r, `guess ${guesses}`);
          guesses++;
        }
      }
      assert.equal(throttledAt, PER_IP, 'the address is throttled after 50 wrong codes, whatever the sessions');
      // Every failure is audited (alerting works from these).
      const fails = await w.server.services.db.kysely.selectFrom('audit_events').select('seq').where('action', '=', 'auth.device_lookup').where('outcome', '=', 'failure').execute();
      assert.ok(fails.length >= PER_IP);
    });
  });
}
