// The console's shell: who is signed in, the navigation, the role summary on every page,
// the idle-timeout warning, and the one way out when the session ends (→ sign-in).
import { ApiError, auth, hasCsrfToken, type Me, me, onApiActivity, onUnauthenticated, setCsrfToken } from './api.ts';
import { append, clear, h } from './dom.ts';
import type { Capabilities } from './perms.ts';

export interface Page {
  title: string;
  /** Renders into `main`; may set the role summary for its scope. */
  render(main: HTMLElement, ctx: PageContext): Promise<void>;
  /** Pages that need no session (sign-in). */
  public?: boolean;
}
export interface PageContext {
  me: Me;
  params: Record<string, string>;
  query: URLSearchParams;
  setSummary(c: Capabilities): void;
  go(hash: string): void;
}

export const state: { me: Me | null; endedMessage: string | null; notices: number; seenNotices: boolean } = { me: null, endedMessage: null, notices: 0, seenNotices: false };

/** Badge count: sensitive events of the last 7 days, other than the sign-in of this very session. */
async function countNotices(m: Me): Promise<number> {
  try {
    const { notifications } = await me.notifications(50);
    const since = Date.now() - 7 * 24 * 3600_000;
    const ownSignIn = m.session?.authTime ?? '';
    return notifications.filter((n) => Date.parse(n.at) >= since && !(n.kind === 'sign_in' && n.at === ownSignIn)).length;
  } catch {
    return 0; // a server without the route, or enrollment pending: no badge
  }
}

// ---- idle timeout ----------------------------------------------------------------------
// The server ends a session after its idle limit without requests. We learn the limit from
// GET /v1/me (idleExpiresAt), restart the countdown after every call, warn two minutes
// before the end, and leave for sign-in when it passes. Nothing polls in the background:
// polling would itself keep the session alive.
const WARN_MS = 2 * 60_000;
let idleMs: number | null = null;
let idleDeadline = 0;
let idleTimer: number | undefined;

export function startIdleClock(m: Me): void {
  const idleAt = m.session?.idleExpiresAt ? Date.parse(m.session.idleExpiresAt) : Number.NaN;
  if (Number.isNaN(idleAt)) return;
  // The server writes last-seen at most once a minute: count from a minute earlier.
  idleMs = Math.max(60_000, idleAt - Date.now() - 60_000);
  idleDeadline = Date.now() + idleMs;
  if (idleTimer === undefined) idleTimer = window.setInterval(checkIdle, 5_000);
}
onApiActivity(() => {
  if (idleMs !== null) idleDeadline = Date.now() + idleMs;
  document.getElementById('idle-warning')?.remove();
});
function checkIdle(): void {
  if (idleMs === null || !state.me) return;
  const left = idleDeadline - Date.now();
  if (left <= 0) {
    sessionEnded('You were signed out after a period of inactivity.');
    return;
  }
  if (left <= WARN_MS && !document.getElementById('idle-warning')) {
    const banner = h(
      'div',
      { id: 'idle-warning', class: 'banner warn', role: 'alert', 'data-testid': 'idle-warning' },
      `Your session ends in about ${Math.ceil(left / 60_000)} minute(s) without activity. `,
      h('button', { type: 'button', onclick: () => void me.get().catch(() => undefined) }, 'Stay signed in'),
    );
    document.body.prepend(banner);
  }
}

// ---- the end of a session --------------------------------------------------------------
export function sessionEnded(message: string): void {
  if (!state.me && location.hash.startsWith('#/sign-in')) return;
  state.me = null;
  state.endedMessage = message;
  setCsrfToken(null);
  idleMs = null;
  document.getElementById('idle-warning')?.remove();
  const back = location.hash && !location.hash.startsWith('#/sign-in') ? location.hash.slice(1) : '/projects';
  location.hash = `#/sign-in?next=${encodeURIComponent(back)}`;
}
onUnauthenticated(() => sessionEnded('Your session has ended (signed out, revoked elsewhere, or expired). Sign in again.'));

/** After a reload: the HttpOnly cookie may still hold a session; fetch who we are and the CSRF token. */
export async function resume(): Promise<Me | null> {
  try {
    const m = await me.get();
    if (!hasCsrfToken()) setCsrfToken((await auth.csrf()).csrfToken);
    state.me = m;
    state.seenNotices = false;
    state.notices = m.mfaEnrollmentRequired ? 0 : await countNotices(m);
    startIdleClock(m);
    return m;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export function shell(m: Me | null, active: string): { main: HTMLElement; summary: HTMLElement } {
  const root = document.getElementById('app')!;
  clear(root);
  const summary = h('p', { class: 'role-summary', 'data-testid': 'role-summary' });
  const main = h('main', { id: 'main' });
  if (m) {
    const link = (hash: string, label: string) => h('a', { href: `#${hash}`, class: active === hash ? 'active' : '' }, label);
    const nav = h(
      'nav',
      {},
      link('/projects', 'Models'),
      h(
        'a',
        { href: '#/security', class: active === '/security' ? 'active' : '' },
        'My security',
        state.notices > 0 && !state.seenNotices && active !== '/security'
          ? h('span', { class: 'badge notice', id: 'notice-badge', 'data-testid': 'notice-badge', title: 'recent activity on your account' }, String(state.notices))
          : null,
      ),
      link('/admin/users', 'Users'),
      link('/audit', 'Audit'),
      link('/alerts', 'Alerts'),
      link('/device', 'Approve a device'),
    );
    const signOut = h('button', { type: 'button', class: 'link', 'data-testid': 'sign-out', onclick: () => void signOutNow() }, 'Sign out');
    append(root, h('header', {}, h('span', { class: 'brand' }, 'Modelkeep'), nav, h('span', { class: 'who' }, m.user.username, ' · ', signOut)), summary);
  } else {
    append(root, h('header', {}, h('span', { class: 'brand' }, 'Modelkeep')));
  }
  append(root, main);
  return { main, summary };
}

async function signOutNow(): Promise<void> {
  try {
    await auth.logout();
  } catch {
    // already ended: sign-in either way
  }
  state.me = null;
  setCsrfToken(null);
  state.endedMessage = 'You signed out.';
  location.hash = '#/sign-in';
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.routeMissing) return 'Not available on this server (the server does not offer this feature yet).';
    if (err.code === 'throttled') return `Too many attempts. Try again in ${err.retryAfterSeconds ?? 'a few'} seconds.`;
    return `${err.message}${err.hint ? ` — ${err.hint}` : ''}${err.requestId ? ` (request ${err.requestId})` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A section whose API is not on this server shows that plainly instead of breaking the page. */
export function unavailable(what: string): HTMLElement {
  return h('p', { class: 'unavailable', 'data-testid': 'unavailable' }, `${what}: not available on this server yet.`);
}
