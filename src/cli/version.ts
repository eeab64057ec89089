// The CLI's own version, read once from package.json.

import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function cliVersion(): string {
  if (cached === undefined) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
      const v = typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined;
      cached = typeof v === 'string' ? v : 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
