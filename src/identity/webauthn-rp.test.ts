// The relying party's defaults follow the bound address; an IP address never becomes an RP ID.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../core/index.ts';
import { resolveRelyingParty } from './webauthn-service.ts';

const cfg = (input: Record<string, unknown> = {}) => parseConfig({ webauthn: input }).webauthn;

test('loopback defaults to rpId localhost and the bound port', () => {
  assert.deepEqual(resolveRelyingParty(cfg(), { host: '127.0.0.1', port: 7470, tls: false }), {
    rpId: 'localhost',
    rpName: 'Modelkeep',
    origins: ['http://localhost:7470'],
  });
  assert.deepEqual(resolveRelyingParty(cfg(), { host: '::1', port: 8443, tls: true })?.origins, ['https://localhost:8443']);
});

test('a named host gives an https origin, without the default port', () => {
  assert.deepEqual(resolveRelyingParty(cfg(), { host: 'models.example.com', port: 443, tls: true })?.origins, ['https://models.example.com']);
  assert.deepEqual(resolveRelyingParty(cfg(), { host: 'models.example.com', port: 7470, tls: true })?.origins, ['https://models.example.com:7470']);
});

test('an IP address without a configured rpId leaves passkeys unavailable', () => {
  assert.equal(resolveRelyingParty(cfg(), { host: '0.0.0.0', port: 7470, tls: true }), null);
  assert.equal(resolveRelyingParty(cfg(), { host: '10.0.0.5', port: 7470, tls: true }), null);
});

test('configured values win, and bad ones are refused at start', () => {
  const rp = resolveRelyingParty(cfg({ rpId: 'example.com', origins: ['https://models.example.com'] }), { host: '0.0.0.0', port: 7470, tls: false });
  assert.deepEqual(rp, { rpId: 'example.com', rpName: 'Modelkeep', origins: ['https://models.example.com'] });
  assert.throws(() => cfg({ rpId: 'https://example.com' }), /webauthn\.rpId/);
  assert.throws(() => cfg({ origins: ['https://example.com/path'] }), /webauthn\.origins/);
  assert.throws(() => cfg({ origins: [] }), /webauthn\.origins/);
});
