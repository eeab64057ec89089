// The RFC 6962 / RFC 9162 known-answer vectors (a copy of ../shared/vectors), validated on load.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

export interface Vectors {
  leaves: string[];
  rootAfter: string[];
  inclusion: { leaf: number; treeSize: number; path: string[] }[];
  consistency: { first: number; second: number; proof: string[] }[];
}

const isHexList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string' && /^([0-9a-f]{2})*$/.test(s));
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export function loadVectors(): Vectors {
  const raw: unknown = JSON.parse(readFileSync(new URL('./rfc6962-merkle.json', import.meta.url), 'utf8'));
  assert.ok(isRecord(raw), 'vector file is an object');
  const { leaves, rootAfter, inclusion, consistency } = raw;
  assert.ok(isHexList(leaves) && isHexList(rootAfter) && Array.isArray(inclusion) && Array.isArray(consistency));
  const inc = inclusion.map((e: unknown) => {
    assert.ok(isRecord(e) && typeof e.leaf === 'number' && typeof e.treeSize === 'number' && isHexList(e.path), JSON.stringify(e));
    return { leaf: e.leaf, treeSize: e.treeSize, path: e.path };
  });
  const con = consistency.map((e: unknown) => {
    assert.ok(isRecord(e) && typeof e.first === 'number' && typeof e.second === 'number' && isHexList(e.proof), JSON.stringify(e));
    return { first: e.first, second: e.second, proof: e.proof };
  });
  return { leaves, rootAfter, inclusion: inc, consistency: con };
}
