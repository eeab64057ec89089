// Parsing of the names and references users type: `P`, `P/M`, `P/M@3`, `P/M@staging`.
// Names are checked here with the server's own rule so a typo fails fast with exit 2.

import { isValidName } from '../core/index.ts';
import { usageError } from './errors.ts';

export const STAGES = ['none', 'staging', 'production', 'archived'] as const;
export type Stage = (typeof STAGES)[number];

const NAME_RULE = "names are 1-63 characters of lowercase letters, digits and '-', starting with a letter or digit";

export function checkName(value: string, what: string): string {
  if (!isValidName(value)) throw usageError(`invalid ${what} name '${value}'`, NAME_RULE);
  return value;
}

/** `P/X` → [P, X] (a model or a deployment or a pipeline in a project). */
export function parsePair(ref: string, what: string): { project: string; name: string } {
  const parts = ref.split('/');
  if (parts.length !== 2) throw usageError(`expected PROJECT/${what.toUpperCase()}, got '${ref}'`);
  return { project: checkName(parts[0] ?? '', 'project'), name: checkName(parts[1] ?? '', what) };
}

export type VersionSelector = { kind: 'number'; version: number } | { kind: 'stage'; stage: 'staging' | 'production' };

export interface VersionRef {
  project: string;
  model: string;
  selector: VersionSelector;
}

/** `P/M@N`, or with `allowStage`, `P/M@staging` / `P/M@production`. */
export function parseVersionRef(ref: string, allowStage: boolean): VersionRef {
  const at = ref.lastIndexOf('@');
  const forms = allowStage ? 'PROJECT/MODEL@N, @staging or @production' : 'PROJECT/MODEL@N';
  if (at < 0) throw usageError(`expected ${forms}, got '${ref}'`);
  const { project, name: model } = parsePair(ref.slice(0, at), 'model');
  const sel = ref.slice(at + 1);
  if (allowStage && (sel === 'staging' || sel === 'production')) {
    return { project, model, selector: { kind: 'stage', stage: sel } };
  }
  return { project, model, selector: { kind: 'number', version: parsePositiveInt(sel, 'version') } };
}

export function parsePositiveInt(value: string, what: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(value)) throw usageError(`invalid ${what} '${value}': expected a positive whole number`);
  return Number(value);
}

export function parseNonNegativeInt(value: string, what: string): number {
  if (!/^(0|[1-9][0-9]{0,14})$/.test(value)) throw usageError(`invalid ${what} '${value}': expected a whole number`);
  return Number(value);
}

export function parseStage(value: string): Stage {
  if (!(STAGES as readonly string[]).includes(value)) {
    throw usageError(`invalid stage '${value}'`, `use one of: ${STAGES.join(', ')}`);
  }
  return value as Stage;
}
