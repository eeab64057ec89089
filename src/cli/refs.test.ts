import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseParams } from './commands/pipelines.ts';
import { CliError } from './errors.ts';
import { parsePair, parsePositiveInt, parseStage, parseVersionRef } from './refs.ts';

const exit2 = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof CliError && e.exitCode === 2);

test('parseVersionRef reads P/M@N and, where allowed, P/M@stage', () => {
  assert.deepEqual(parseVersionRef('fraud/churn@3', false), { project: 'fraud', model: 'churn', selector: { kind: 'number', version: 3 } });
  assert.deepEqual(parseVersionRef('fraud/churn@staging', true), {
    project: 'fraud',
    model: 'churn',
    selector: { kind: 'stage', stage: 'staging' },
  });
  assert.deepEqual(parseVersionRef('a/b@production', true).selector, { kind: 'stage', stage: 'production' });
  for (const bad of ['fraud/churn', 'fraud/churn@', 'fraud/churn@0', 'fraud/churn@-1', 'fraud/churn@1.5', 'fraud@1', 'a/b/c@1', 'Fraud/churn@1', 'fraud/churn@ 1']) {
    exit2(() => parseVersionRef(bad, true));
  }
  exit2(() => parseVersionRef('fraud/churn@staging', false));
  exit2(() => parseVersionRef('fraud/churn@archived', true));
});

test('parsePair checks both names with the server rule', () => {
  assert.deepEqual(parsePair('p/d', 'deployment'), { project: 'p', name: 'd' });
  exit2(() => parsePair('p', 'model'));
  exit2(() => parsePair('p/', 'model'));
  exit2(() => parsePair('p/M', 'model'));
  exit2(() => parsePair('../x', 'model'));
});

test('numbers and stages', () => {
  assert.equal(parsePositiveInt('42', 'version'), 42);
  exit2(() => parsePositiveInt('042', 'version'));
  exit2(() => parsePositiveInt('1e3', 'version'));
  exit2(() => parsePositiveInt('9999999999999999', 'version'));
  assert.equal(parseStage('none'), 'none');
  exit2(() => parseStage('prod'));
});

test('parseParams splits on the first = and refuses prototype keys', () => {
  assert.deepEqual({ ...parseParams(['a=1', 'b=x=y', 'c=']) }, { a: '1', b: 'x=y', c: '' });
  exit2(() => parseParams(['novalue']));
  exit2(() => parseParams(['=v']));
  exit2(() => parseParams(['__proto__=x']));
});
