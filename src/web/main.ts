// Entry point: a hash router over the pages. Every page needs a session except sign-in;
// after a reload the session is resumed from the HttpOnly cookie (GET /v1/me, /v1/auth/csrf).
import './styles.css';
import { ApiError } from './api.ts';
import { errorText, type PageContext, resume, shell, state } from './app.ts';
import { append, h } from './dom.ts';
import { renderBindings, renderUsers } from './pages/admin.ts';
import { renderAlerts, renderAudit } from './pages/audit.ts';
import { renderDevice } from './pages/device.ts';
import { renderEnroll } from './pages/enroll.ts';
import { renderModel, renderProject, renderProjects, renderVersion } from './pages/models.ts';
import { renderSecurity } from './pages/security.ts';
import { renderSignIn } from './pages/signin.ts';

type Render = (main: HTMLElement, ctx: PageContext) => Promise<void>;
const ROUTES: [RegExp, string[], string, Render][] = [
  [/^\/projects$/, [], '/projects', renderProjects],
  [/^\/projects\/([^/]+)$/, ['project'], '/projects', renderProject],
  [/^\/projects\/([^/]+)\/access$/, ['project'], '/projects', renderBindings],
  [/^\/projects\/([^/]+)\/models\/([^/]+)$/, ['project', 'model'], '/projects', renderModel],
  [/^\/projects\/([^/]+)\/models\/([^/]+)\/versions\/(\d+)$/, ['project', 'model', 'version'], '/projects', renderVersion],
  [/^\/security$/, [], '/security', renderSecurity],
  [/^\/admin\/users$/, [], '/admin/users', renderUsers],
  [/^\/audit$/, [], '/audit', renderAudit],
  [/^\/alerts$/, [], '/alerts', renderAlerts],
  [/^\/device$/, [], '/device', renderDevice],
  [/^\/enroll$/, [], '/enroll', renderEnroll],
];

function go(hash: string): void {
  if (location.hash === `#${hash}`) void route();
  else location.hash = `#${hash}`;
}

let rendering = 0;
async function route(): Promise<void> {
  const ticket = ++rendering;
  const raw = location.hash.replace(/^#/, '') || '/projects';
  const [path = '/projects', search = ''] = raw.split('?', 2);
  const query = new URLSearchParams(search);

  if (path === '/sign-in') {
    const { main } = shell(null, path);
    await renderSignIn(main, query, go);
    return;
  }
  if (!state.me) {
    const m = await resume().catch(() => null);
    if (ticket !== rendering) return;
    if (!m) {
      location.hash = `#/sign-in?next=${encodeURIComponent(raw)}`;
      return;
    }
  }
  const me = state.me;
  if (!me) return;
  // An administrator who must set up a second factor reaches nothing else first (the server refuses it too).
  if (me.mfaEnrollmentRequired && path !== '/enroll') {
    location.hash = '#/enroll';
    return;
  }
  const found = ROUTES.map(([re, names, nav, render]) => ({ m: re.exec(path), names, nav, render })).find((r) => r.m);
  const { main, summary } = shell(me, found?.nav ?? '');
  if (!found?.m) {
    append(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/projects' }, 'Back to your projects')));
    return;
  }
  const params: Record<string, string> = {};
  found.names.forEach((n, i) => {
    params[n] = decodeURIComponent(found.m?.[i + 1] ?? '');
  });
  const ctx: PageContext = {
    me,
    params,
    query,
    go,
    setSummary: (c) => {
      summary.textContent = c.summary();
      if (c.source === 'roles') summary.append(h('span', { class: 'muted' }, ' (from your role bindings; the server checks every action)'));
    },
  };
  try {
    await found.render(main, ctx);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // sessionEnded() has taken us to sign-in
    const text = err instanceof ApiError && err.status === 404 ? 'Not found, or not visible to you.' : errorText(err);
    append(main, h('p', { class: 'status error', 'data-testid': 'page-error' }, text));
  }
}

// `/device?user_code=…` (the verification URI printed by `modelkeep login`) opens the device page.
if (location.pathname === '/device') history.replaceState(null, '', `/#/device${location.search}`);
window.addEventListener('hashchange', () => void route());
// Coming back to the tab: check the session still exists (it may have been revoked elsewhere).
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.me) void resume();
});
void route();
