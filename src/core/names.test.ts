import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelkeepError } from './errors.ts';
import { isValidName, validateArtifactPath, validateName } from './names.ts';

test('names follow ^[a-z0-9][a-z0-9-]{0,62}$', () => {
  for (const ok of ['a', 'fraud', 'churn-v2', '0abc', 'a'.repeat(63)]) assert.equal(validateName(ok), ok);
  for (const bad of ['', '-a', 'A', 'a_b', 'a.b', 'a'.repeat(64), 'é', 'a b', 'a\u0000', 42, null]) {
    assert.equal(isValidName(bad), false, String(bad));
    assert.throws(() => validateName(bad), (e: unknown) => e instanceof ModelkeepError && e.code === 'invalid_input');
  }
});

test('artifact paths: safe relative segments are accepted as they are', () => {
  for (const ok of ['model.onnx', 'onnx/model.onnx', '.gitattributes', 'a/b/c/d.bin', 'v1.2_final+x=1@y-z', 'x'.repeat(255)]) {
    assert.equal(validateArtifactPath(ok), ok);
  }
});

test('artifact-path traversal forms are refused', () => {
  const bad = [
    '',
    '../../etc/passwd',
    '..',
    '.',
    'a/../b',
    'a/./b',
    '/etc/passwd',
    '..\\..\\win.ini',
    'C:\\x',
    'C:x',
    '%2e%2e%2f',
    '%252e%252e%252f',
    '..%c0%af',
    '\uff0e\uff0e\uff0f',
    'a\u0000b',
    'a//b',
    'a/',
    'a b',
    'a\nb',
    `${'x/'.repeat(40)}x`,
    'x'.repeat(256),
    `${'abcdefgh/'.repeat(60)}z`,
  ];
  for (const p of bad) {
    assert.throws(() => validateArtifactPath(p), (e: unknown) => e instanceof ModelkeepError && e.code === 'invalid_input', JSON.stringify(p));
  }
});
