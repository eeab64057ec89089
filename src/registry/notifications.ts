// The caller's own recent sensitive events, read from the audit log for GET
// /v1/me/notifications (the console's My security page and its badge): new sign-ins,
// new API keys / passkeys / authenticator apps, "sign out everywhere", reuse of a refresh
// token of one of their token families, and promotions to production of models they
// created. Only events about the caller are read: their own actions (actor_id), refresh
// reuse on families they own, and promotions of their models — never anyone else's.
import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/index.ts';
import { ModelkeepError } from '../core/index.ts';
import type { Database } from '../storage/index.ts';

export type NotificationKind = 'sign_in' | 'api_key_created' | 'passkey_added' | 'totp_enrolled' | 'signed_out_everywhere' | 'refresh_token_reuse' | 'promoted_to_production';

export interface Notification {
  at: string;
  kind: NotificationKind;
  message: string;
  ip: string | null;
  userAgent: string | null;
}

export const NOTIFICATIONS_MAX = 50;
/** How far back the promotions of the caller's models are searched (audit rows, newest first). */
const PROMOTION_SCAN = 500;

const OWN: Record<string, { kind: NotificationKind; message: (d: Record<string, unknown>) => string }> = {
  'auth.login': { kind: 'sign_in', message: (d) => `New sign-in${Array.isArray(d.amr) && d.amr.length ? ` (${d.amr.join(' + ')})` : ''}` },
  'api_key.create': { kind: 'api_key_created', message: (d) => `New API key${typeof d.name === 'string' ? ` "${d.name}"` : ''}` },
  'auth.passkey_registered': { kind: 'passkey_added', message: (d) => `New passkey${typeof d.name === 'string' ? ` "${d.name}"` : ''}` },
  'auth.mfa_enrolled': { kind: 'totp_enrolled', message: () => 'Authenticator app (TOTP) set up' },
  'auth.logout_all': { kind: 'signed_out_everywhere', message: (d) => `Signed out everywhere${typeof d.sessionsEnded === 'number' ? ` (${d.sessionsEnded} session(s) ended)` : ''}` },
};

function details(raw: string): Record<string, unknown> {
  try {
    const v = JSON.parse(raw) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export async function myNotifications(db: Kysely<Database>, ctx: RequestContext, rawLimit: unknown): Promise<{ notifications: Notification[] }> {
  const p = ctx.principal;
  // A user's own account: service accounts have no console and no such events.
  if (p.kind !== 'user') throw new ModelkeepError('forbidden', 'notifications belong to user accounts');
  const n = typeof rawLimit === 'string' && /^\d{1,3}$/.test(rawLimit) ? Number(rawLimit) : 20;
  const limit = Math.min(Math.max(n, 1), NOTIFICATIONS_MAX);
  type Row = { seq: number; time: string; action: string; ip: string | null; user_agent: string | null; resource: string | null; details: string };
  const cols = ['seq', 'time', 'action', 'ip', 'user_agent', 'resource', 'details'] as const;

  const own: Row[] = await db
    .selectFrom('audit_events')
    .select(cols)
    .where('actor_id', '=', p.id)
    .where('outcome', '=', 'success')
    .where('action', 'in', Object.keys(OWN))
    .orderBy('seq', 'desc')
    .limit(limit)
    .execute();

  const families = (await db.selectFrom('token_families').select('id').where('user_id', '=', p.id).execute()).map((f) => `token-family:${f.id}`);
  const reuse: Row[] = families.length
    ? await db.selectFrom('audit_events').select(cols).where('action', '=', 'auth.refresh_reuse').where('resource', 'in', families).orderBy('seq', 'desc').limit(limit).execute()
    : [];

  // Models the caller created: promotions of their versions to production, by anyone.
  const models = await db
    .selectFrom('models')
    .innerJoin('projects', 'projects.id', 'models.project_id')
    .select(['models.name as model', 'projects.name as project', 'projects.id as projectId'])
    .where('models.created_by', '=', p.username)
    .execute();
  let promotions: Row[] = [];
  if (models.length) {
    const prefixes = models.map((m) => `version:${m.project}/${m.model}@`);
    const rows = await db
      .selectFrom('audit_events')
      .select(cols)
      .where('action', '=', 'version.promote')
      .where('outcome', '=', 'success')
      .where('project_id', 'in', [...new Set(models.map((m) => m.projectId))])
      .orderBy('seq', 'desc')
      .limit(PROMOTION_SCAN)
      .execute();
    promotions = rows.filter((r) => r.resource !== null && prefixes.some((x) => r.resource?.startsWith(x)) && details(r.details).to === 'production');
  }

  const out: (Notification & { seq: number })[] = [
    ...own.map((r) => {
      const o = OWN[r.action];
      return { seq: r.seq, at: r.time, kind: o?.kind ?? 'sign_in', message: o?.message(details(r.details)) ?? r.action, ip: r.ip, userAgent: r.user_agent };
    }),
    ...reuse.map((r) => ({
      seq: r.seq,
      at: r.time,
      kind: 'refresh_token_reuse' as const,
      message: 'A used refresh token was presented again: that sign-in (CLI or device) was ended. If it was not you, change your password.',
      ip: r.ip,
      userAgent: r.user_agent,
    })),
    ...promotions.map((r) => ({
      seq: r.seq,
      at: r.time,
      kind: 'promoted_to_production' as const,
      message: `${(r.resource ?? '').replace(/^version:/, '')} was promoted to production`,
      ip: r.ip,
      userAgent: r.user_agent,
    })),
  ];
  out.sort((a, b) => b.seq - a.seq);
  return { notifications: out.slice(0, limit).map(({ seq: _seq, ...rest }) => rest) };
}
