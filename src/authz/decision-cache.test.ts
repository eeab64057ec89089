// The decision cache's bounded map: never above its bound, keeps what is used, forgets what is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Lru } from './decision-cache.ts';

test('Lru stays within its bound and forgets the entries nobody uses', () => {
  const lru = new Lru<number>(100);
  for (let i = 0; i < 1000; i++) lru.set(`k${i}`, i);
  assert.equal(lru.size, 100);
  assert.equal(lru.get('k0'), undefined, 'an old unused entry is gone');
  assert.equal(lru.get('k999'), 999, 'the newest is kept');
});

test('Lru gives a recently used entry a second chance over unused newer ones', () => {
  const lru = new Lru<number>(100);
  for (let i = 0; i < 100; i++) lru.set(`k${i}`, i);
  // k0 is the oldest inserted, but it is used all the time.
  for (let i = 100; i < 400; i++) {
    assert.equal(lru.get('k0'), 0, `k0 still cached after ${i - 100} insertions`);
    lru.set(`k${i}`, i);
    assert.ok(lru.size <= 100);
  }
  assert.equal(lru.get('k1'), undefined, 'an unused old entry went instead');
});

test('Lru set replaces a value, delete and clear remove', () => {
  const lru = new Lru<string>(3);
  lru.set('a', '1');
  lru.set('a', '2');
  assert.equal(lru.size, 1);
  assert.equal(lru.get('a'), '2');
  lru.delete('a');
  assert.equal(lru.get('a'), undefined);
  lru.set('b', 'x');
  lru.clear();
  assert.equal(lru.size, 0);
});
