// Request ids from the pool: the documented shape, and no repeats across pool refills.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRequestId } from './ids.ts';

test('request ids are req_ and 16 URL-safe characters, distinct across many pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = newRequestId();
    assert.match(id, /^req_[A-Za-z0-9_-]{16}$/);
    seen.add(id);
  }
  // 5000 ids draw 60,000 bytes: the 4 KiB pool was refilled fourteen times.
  assert.equal(seen.size, 5000);
});
