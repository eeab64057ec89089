// `access`: "what can I do here?" — the caller's own permissions on one resource
// (GET /v1/me/permissions), or without an argument the caller's roles (GET /v1/me).

import type { CommandDef } from '../command.ts';
import { EXIT, usageError } from '../errors.ts';
import { print, type Row, renderFields, renderJson, renderTable, safeText } from '../output.ts';
import { checkName, parsePositiveInt, parseVersionRef } from '../refs.ts';
import { signedInClient } from '../session.ts';
import { resolveVersion } from './versions.ts';

const KINDS = ['project', 'model', 'version', 'deployment', 'pipeline'] as const;

/**
 * The `resource` query value for what the user typed:
 * P → project:P, P/M → model:P/M, P/M/V or P/M@V|@staging|@production → version:P/M/V,
 * and the explicit KIND:PATH forms (deployment:P/D, pipeline:P/NAME, …).
 */
export function accessTarget(arg: string): { kind: (typeof KINDS)[number]; parts: string[] } | { kind: 'version-ref'; ref: string } {
  const colon = arg.indexOf(':');
  if (colon >= 0) {
    const kind = arg.slice(0, colon);
    const path = arg.slice(colon + 1);
    if (!(KINDS as readonly string[]).includes(kind)) {
      throw usageError(`unknown resource kind '${kind}'`, `use one of ${KINDS.map((k) => `${k}:`).join(', ')} or P, P/M, P/M/V`);
    }
    if (kind === 'version' && path.includes('@')) return { kind: 'version-ref', ref: path };
    return { kind: kind as (typeof KINDS)[number], parts: checkParts(kind as (typeof KINDS)[number], path) };
  }
  if (arg.includes('@')) return { kind: 'version-ref', ref: arg };
  const n = arg.split('/').length;
  const kind = n === 1 ? 'project' : n === 2 ? 'model' : n === 3 ? 'version' : null;
  if (kind === null) throw usageError(`expected P, P/M, P/M/V, deployment:P/D or pipeline:P/NAME, got '${arg}'`);
  return { kind, parts: checkParts(kind, arg) };
}

function checkParts(kind: (typeof KINDS)[number], path: string): string[] {
  const parts = path.split('/');
  const want = { project: ['project'], model: ['project', 'model'], version: ['project', 'model', 'version'], deployment: ['project', 'deployment'], pipeline: ['project', 'pipeline'] }[kind];
  if (parts.length !== want.length) throw usageError(`a ${kind} is named ${want.map((w) => w.toUpperCase()).join('/')}, got '${path}'`);
  return parts.map((p, i) => (want[i] === 'version' ? String(parsePositiveInt(p, 'version')) : checkName(p, want[i] ?? kind)));
}

interface PermissionView {
  allowed?: boolean;
  reason?: string;
  hint?: string;
  mfaRequired?: boolean;
}

function verdict(p: PermissionView): string {
  if (p.allowed === true) return 'allowed';
  return p.mfaRequired === true ? 'needs a fresh MFA' : 'denied';
}

export const access: CommandDef = {
  path: ['access'],
  summary: 'show what you may do on a resource (allowed, denied and why), or your roles',
  usage: '[P | P/M | P/M/V | P/M@V | deployment:P/D | pipeline:P/NAME]',
  description:
    'With a resource, asks the server which actions you may take on it (GET /v1/me/permissions) and prints\n' +
    'one line per action: allowed, denied (with the reason and what would change it), or "needs a fresh MFA"\n' +
    '(the action would be allowed after a second factor within the last 15 minutes; see `promote`).\n' +
    'The answer is for the credential in use: a token or API key is limited by its scopes.\n' +
    'Without an argument, prints your roles (GET /v1/me). A resource you cannot see is exit 5.',
  examples: [
    'modelkeep access',
    'modelkeep access fraud',
    'modelkeep access fraud/churn@production',
    'modelkeep access deployment:fraud/scoring --json',
  ],
  positionals: { min: 0, max: 1 },
  options: {},
  async run(ctx) {
    const arg = ctx.positionals[0];
    const target = arg === undefined ? null : accessTarget(arg);
    const client = await signedInClient(ctx);
    if (target === null) {
      const me = await client.json<{ user?: { username?: string }; roles?: Row[] }>('GET', '/v1/me');
      if (ctx.json) {
        print(ctx.io, renderJson(me));
        return EXIT.ok;
      }
      const roles = Array.isArray(me.roles) ? me.roles : [];
      print(ctx.io, renderFields([['user', me.user?.username]]));
      print(
        ctx.io,
        roles.length === 0
          ? '\nno roles: you can see no project\n'
          : `\n${renderTable(
              [
                { header: 'SCOPE', value: (r: Row) => r.scope },
                { header: 'ROLE', value: (r) => r.role },
                { header: 'EXPIRES', value: (r) => r.expiresAt ?? 'never' },
              ],
              roles,
            )}`,
      );
      return EXIT.ok;
    }
    let resource: string;
    if (target.kind === 'version-ref') {
      const ref = parseVersionRef(target.ref, true);
      resource = `version:${ref.project}/${ref.model}/${await resolveVersion(client, ref)}`;
    } else {
      resource = `${target.kind}:${target.parts.join('/')}`;
    }
    const body = await client.json<{ resource?: string; actions?: Record<string, PermissionView> }>('GET', '/v1/me/permissions', { query: { resource } });
    if (ctx.json) {
      print(ctx.io, renderJson(body));
      return EXIT.ok;
    }
    const rows = Object.entries(body.actions ?? {}).map(([action, p]) => ({ action, ...p }));
    print(ctx.io, `resource: ${safeText(body.resource ?? resource)}\n\n`);
    print(
      ctx.io,
      renderTable(
        [
          { header: 'ACTION', value: (r: (typeof rows)[number]) => r.action },
          { header: 'ALLOWED', value: (r) => verdict(r) },
          { header: 'WHY', value: (r) => (r.allowed === true ? '' : [r.reason, r.hint].filter(Boolean).join(' — ')) },
        ],
        rows,
      ),
    );
    return EXIT.ok;
  },
};
