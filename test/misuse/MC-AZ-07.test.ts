// MC-AZ-07 — Cedar skip-on-error fail-open. Cedar skips a policy whose evaluation
// errors; a skipped forbid would let a matching permit through. Two defences, both
// proven here: a guardrail that reads a missing attribute or compares the wrong type is
// refused at load (strict schema validation), and a guardrail that validates but errors
// at run time (integer overflow) makes the guard deny even though a permit matches —
// through the PDP and end to end over HTTP, with the denial in the audit log.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CedarEngine, fixtureRequest, PolicyLoadError } from '../../src/authz/cedar-engine.ts';
import { CedarPdp } from '../../src/authz/pdp.ts';
import { DEFAULT_POLICIES_DIR } from '../../src/main.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function policiesWith(extra: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mk-az07-'));
  temps.push(dir);
  for (const f of readdirSync(DEFAULT_POLICIES_DIR)) if (f.endsWith('.cedar') || f.endsWith('.cedarschema')) cpSync(join(DEFAULT_POLICIES_DIR, f), join(dir, f));
  writeFileSync(join(dir, 'broken-guardrail.cedar'), extra);
  return dir;
}

/** Validates, but overflows a 64-bit Long whenever it is evaluated. */
const ERRORING_FORBID = `@id("broken.overflow")
forbid (principal, action == Modelkeep::Action::"model:read", resource)
when { context.hourOfDay + 9223372036854775807 + 1 > 0 };
`;

describe('MC-AZ-07: a guardrail that errors never fails open', () => {
  test('a forbid reading a missing attribute, or comparing the wrong type, is refused at load', () => {
    for (const text of [
      '@id("broken.missing")\nforbid (principal, action == Modelkeep::Action::"model:read", resource) when { context.device.risk == "high" };\n',
      '@id("broken.type")\nforbid (principal, action == Modelkeep::Action::"version:promote", resource) when { resource.stage > 2 };\n',
    ]) {
      assert.throws(
        () => CedarEngine.load(policiesWith(text)),
        (err) => err instanceof PolicyLoadError && err.errors.some((e) => e.startsWith('broken-guardrail.cedar:')),
      );
    }
  });

  test('a forbid that errors at evaluation while a permit matches: deny, with the error reported', () => {
    const pdp = new CedarPdp(CedarEngine.load(policiesWith(ERRORING_FORBID)));
    const req = fixtureRequest({ name: 'viewer reads a model', principal: { roles: ['viewer'] }, action: 'model:read', resource: { type: 'Model' }, expected: 'allow' });
    const d = pdp.decide({ principal: { type: 'User', id: 'alice', roles: [{ scope: 'fraud', role: 'viewer' }] }, action: 'model:read', resource: { type: 'Model', id: 'fraud/model-1', project: 'fraud', sensitivity: 'internal' }, context: req.context });
    assert.equal(d.decision, 'deny');
    assert.ok(d.errors.some((e) => e.includes('broken.overflow')), d.errors.join('; '));
    // Control: the same request without the broken guardrail is allowed (the permit matches).
    const clean = new CedarPdp(CedarEngine.load(DEFAULT_POLICIES_DIR));
    assert.equal(clean.decide({ principal: { type: 'User', id: 'alice', roles: [{ scope: 'fraud', role: 'viewer' }] }, action: 'model:read', resource: { type: 'Model', id: 'fraud/model-1', project: 'fraud', sensitivity: 'internal' }, context: req.context }).decision, 'allow');
  });

  for (const backend of BACKENDS) {
    describe(`over HTTP (${backend})`, () => {
      let w: World;
      before(async () => {
        w = await world(backend, { config: { policiesDir: policiesWith(ERRORING_FORBID) } });
        assert.equal((await w.as['ml-engineer'].post('/v1/projects/fraud/models', { name: 'churn' })).status, 201);
      });
      after(() => w.server.close());

      test('a viewer reading a model is denied and the denial is audited; other actions still work', async () => {
        const r = await w.as.viewer.get('/v1/projects/fraud/models/churn');
        assert.equal(r.status, 403);
        const body = await json<{ error: { code: string; message: string } }>(r);
        assert.equal(body.error.code, 'forbidden');
        assert.match(body.error.message, /could not be completed/);
        assert.ok(!body.error.message.includes('overflow'), 'engine internals are not shown to the caller');
        const events = await json<{ events: { action: string; outcome: string; resource: string; policyVersion: string }[] }>(
          await w.admin.get('/v1/audit/events?action=model:read&outcome=deny&limit=100'),
        );
        assert.ok(events.events.some((e) => e.resource === 'model:fraud/churn' && /^[0-9a-f]{64}$/.test(e.policyVersion)));
        assert.equal((await w.as.viewer.get('/v1/projects/fraud')).status, 200, 'only the erroring action is denied');
      });
    });
  }
});
