// Deployment configurations and pipeline parameters are flat maps of plain values,
// validated here. They are data handed to other systems as argv/env, never evaluated
// and never passed through a shell (MC-ART-06).
import { invalidInput } from './errors.ts';

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const MAX_KEYS = 64;
const MAX_STRING = 4096;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this rejects
const CONTROL = /[\u0000-\u001f\u007f]/;

export type FlatValue = string | number | boolean;

export function validateFlatMap(value: unknown, field: string): Record<string, FlatValue> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidInput(`${field} must be a JSON object`);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_KEYS) throw invalidInput(`${field} may have at most ${MAX_KEYS} keys`);
  const out: Record<string, FlatValue> = {};
  for (const [k, v] of entries) {
    if (!KEY.test(k) || k === '__proto__' || k === 'constructor' || k === 'prototype') throw invalidInput(`${field} key '${k.slice(0, 64)}' is not allowed (letters, digits, _ . -)`);
    if (typeof v === 'string') {
      if (v.length > MAX_STRING || CONTROL.test(v)) throw invalidInput(`${field}.${k} must be at most ${MAX_STRING} characters without control characters`);
    } else if (!(typeof v === 'number' && Number.isFinite(v)) && typeof v !== 'boolean') {
      throw invalidInput(`${field}.${k} must be a string, a finite number or a boolean`);
    }
    out[k] = v as FlatValue;
  }
  return out;
}
