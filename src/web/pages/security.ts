// My security: this session; recent sensitive events on the account (notifications);
// sessions and devices (revoke one, sign out everywhere); second factors (authenticator
// app with recovery codes, passkeys); personal API keys (shown once). Removing a factor
// or replacing recovery codes asks for a fresh second factor in place (428 → step-up).
import { ApiError, auth, me, type Notice } from '../api.ts';
import { errorText, type PageContext, sessionEnded, state, unavailable } from '../app.ts';
import { append, field, h, status, when } from '../dom.ts';
import { capabilitiesFor } from '../perms.ts';
import { withStepUp } from '../stepup.ts';
import { createPasskey, passkeysSupported } from '../webauthn.ts';
import { beginTotp, recoveryCodesView } from './totp.ts';

const SCOPES = ['read', 'download', 'write', 'release', 'trigger', 'admin'];

async function section(title: string, testid: string, build: () => Promise<(HTMLElement | null)[]>): Promise<HTMLElement> {
  const s = h('section', { class: 'card', 'data-testid': testid }, h('h2', {}, title));
  try {
    append(s, ...(await build()));
  } catch (err) {
    if (err instanceof ApiError && err.routeMissing) append(s, unavailable(title));
    else if (err instanceof ApiError && err.status === 401) throw err;
    else append(s, h('p', { class: 'status error' }, errorText(err)));
  }
  return s;
}

const table = (heads: string[], rows: HTMLElement[], testid: string) =>
  h('table', { 'data-testid': testid }, h('thead', {}, h('tr', {}, ...heads.map((x) => h('th', {}, x)))), h('tbody', {}, ...rows));

export function noticeList(list: Notice[]): HTMLElement {
  if (list.length === 0) return h('p', { class: 'muted' }, 'Nothing yet.');
  return h(
    'ul',
    { class: 'notices', 'data-testid': 'notifications' },
    ...list.map((n) =>
      h('li', { 'data-kind': n.kind }, h('strong', {}, n.message), ' ', h('span', { class: 'muted' }, `${when(n.at)} · ${n.ip ?? 'unknown address'}${n.userAgent ? ` · ${n.userAgent}` : ''}`)),
    ),
  );
}

export async function renderSecurity(main: HTMLElement, ctx: PageContext): Promise<void> {
  ctx.setSummary(await capabilitiesFor(ctx.me.roles, null, null));
  const reload = () => ctx.go('/security');
  const s = ctx.me.session;
  const current = h(
    'section',
    { class: 'card' },
    h('h2', {}, 'This session'),
    h('p', {}, `Signed in ${when(s?.authTime)} with ${(s?.amr ?? []).join(' + ') || 'password'}; second factor ${s?.mfaAt ? `checked ${when(s.mfaAt)}` : 'not used'}; ends ${when(s?.expiresAt)} at the latest.`),
  );

  const notices = await section('Recent activity on your account', 'notifications-section', async () => {
    const { notifications } = await me.notifications(20);
    state.seenNotices = true;
    document.getElementById('notice-badge')?.remove();
    return [h('p', {}, 'Sign-ins, new keys and second factors, "sign out everywhere", reuse of a CLI token, and promotions of your models to production. Not you? Sign out everywhere and tell an administrator.'), noticeList(notifications)];
  });

  const sessions = await section('Sessions and devices', 'sessions-section', async () => {
    const { sessions: list } = await me.sessions();
    const msg = status();
    const rows = list.map((x) => {
      const here = x.current === true || x.id === s?.id;
      const revoke = h('button', { type: 'button', class: 'secondary', 'data-testid': here ? 'end-this-session' : 'revoke-session' }, here ? 'Sign out here' : 'Revoke');
      revoke.addEventListener('click', () => {
        me.revokeSession(x.id).then(here ? () => sessionEnded('You signed out.') : reload, (err: unknown) => msg.set('error', errorText(err)));
      });
      return h(
        'tr',
        { 'data-testid': here ? 'session-current' : 'session-other' },
        h('td', {}, x.userAgent ?? '—', here ? h('span', { class: 'badge' }, 'this session') : null),
        h('td', {}, x.ip ?? '—'),
        h('td', {}, (x.amr ?? []).join(' + ')),
        h('td', {}, when(x.lastSeenAt)),
        h('td', {}, when(x.createdAt)),
        h('td', {}, revoke),
      );
    });
    const all = h('button', { type: 'button', class: 'danger', 'data-testid': 'logout-all' }, 'Sign out everywhere');
    all.addEventListener('click', () => {
      auth.logoutAll().then(
        () => sessionEnded('You signed out everywhere.'),
        (err: unknown) => msg.set('error', errorText(err)),
      );
    });
    return [table(['Device', 'IP', 'Factors', 'Last seen', 'Signed in', ''], rows, 'sessions'), all, msg];
  });

  const totp = await section('Authenticator app (TOTP)', 'totp-section', async () => {
    const f = await me.mfa();
    const msg = status();
    const area = h('div', {});
    if (f.totp) {
      const remove = h('button', { type: 'button', class: 'danger', 'data-testid': 'totp-remove' }, 'Remove the authenticator app');
      remove.addEventListener('click', () => {
        withStepUp(() => me.removeTotp()).then(reload, (err: unknown) => msg.set('error', errorText(err)));
      });
      const codes = h('button', { type: 'button', class: 'secondary', 'data-testid': 'recovery-new' }, 'New recovery codes');
      codes.addEventListener('click', () => {
        withStepUp(() => me.newRecoveryCodes()).then(
          (r) => area.replaceChildren(recoveryCodesView(r.recoveryCodes)),
          (err: unknown) => msg.set('error', errorText(err)),
        );
      });
      return [h('p', { 'data-testid': 'totp-status' }, `Set up. ${f.recoveryCodesLeft} recovery code(s) left.`), h('div', { class: 'actions' }, remove, codes), area, msg];
    }
    const start = h('button', { type: 'button', 'data-testid': 'totp-enroll' }, 'Set up an authenticator app');
    start.addEventListener('click', () => {
      beginTotp(area, (codes) => area.replaceChildren(h('p', { class: 'status ok' }, 'Your authenticator app is set up.'), recoveryCodesView(codes))).catch((err: unknown) =>
        msg.set('error', errorText(err)),
      );
    });
    return [h('p', { 'data-testid': 'totp-status' }, 'Not set up.'), start, area, msg];
  });

  const passkeys = await section('Passkeys', 'passkeys-section', async () => {
    const { passkeys: list } = await me.passkeys();
    const msg = status();
    const rows = list.map((k) => {
      const remove = h('button', { type: 'button', class: 'secondary', 'data-testid': `passkey-remove-${k.name}` }, 'Remove');
      remove.addEventListener('click', () => {
        withStepUp(() => me.removePasskey(k.id)).then(reload, (err: unknown) => msg.set('error', errorText(err)));
      });
      return h('tr', {}, h('td', {}, k.name), h('td', {}, when(k.createdAt)), h('td', {}, when(k.lastUsedAt)), h('td', {}, remove));
    });
    const name = h('input', { required: true, maxlength: 64, value: 'My passkey', 'data-testid': 'passkey-name' });
    const add = h('button', { type: 'submit', 'data-testid': 'passkey-add' }, 'Add a passkey');
    const form = h('form', { class: 'inline' }, field('Name', name), add);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        try {
          msg.set('info', 'Follow your browser or authenticator…');
          const response = await createPasskey(await me.passkeyOptions());
          await me.addPasskey(name.value.trim(), response);
          reload();
        } catch (err) {
          msg.set('error', errorText(err));
        }
      })();
    });
    if (!passkeysSupported()) {
      add.disabled = true;
      msg.set('info', 'This browser cannot create passkeys here (it needs HTTPS or localhost).');
    }
    return [list.length ? table(['Name', 'Added', 'Last used', ''], rows, 'passkeys') : h('p', { class: 'muted' }, 'No passkeys yet.'), form, msg];
  });

  const keys = await section('API keys', 'api-keys-section', async () => {
    const { apiKeys } = await me.apiKeys();
    const msg = status();
    const rows = apiKeys.map((k) => {
      const revoke = h('button', { type: 'button', class: 'secondary', 'data-testid': `api-key-revoke-${k.name}` }, 'Revoke');
      revoke.addEventListener('click', () => {
        me.revokeApiKey(k.id).then(reload, (err: unknown) => msg.set('error', errorText(err)));
      });
      return h('tr', {}, h('td', {}, k.name), h('td', {}, k.scopes.join(' ')), h('td', {}, k.project ?? 'all'), h('td', {}, when(k.expiresAt)), h('td', {}, when(k.lastUsedAt)), h('td', {}, revoke));
    });
    const name = h('input', { required: true, 'data-testid': 'api-key-name' });
    const boxes = SCOPES.map((sc) => h('input', { type: 'checkbox', value: sc, 'data-testid': `api-key-scope-${sc}`, ...(sc === 'read' ? { checked: true } : {}) }));
    const scopes = h('fieldset', { class: 'scopes' }, h('legend', {}, 'Scopes'), ...boxes.map((b) => h('label', {}, b, ` ${b.value}`)));
    const project = h('input', { placeholder: 'any project', 'data-testid': 'api-key-project' });
    const days = h('input', { type: 'number', min: 1, max: 365, value: 30, 'data-testid': 'api-key-days' });
    const shown = h('div', {});
    const form = h(
      'form',
      { class: 'inline' },
      field('Name', name),
      scopes,
      field('Only in project (optional)', project),
      field('Expires in days', days),
      h('button', { type: 'submit', 'data-testid': 'api-key-create' }, 'Create key'),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      me.createApiKey({
        name: name.value,
        scopes: boxes.filter((b) => b.checked).map((b) => b.value),
        ...(project.value.trim() ? { project: project.value.trim() } : {}),
        expiresInDays: Number(days.value),
      }).then(
        (r) => {
          const done = h('button', { type: 'button', 'data-testid': 'api-key-done' }, 'I have copied it');
          done.addEventListener('click', reload);
          shown.replaceChildren(
            h('p', {}, `Your new key "${r.name}" (${r.scopes.join(' ')}${r.project ? `, only in ${r.project}` : ''}, expires ${when(r.expiresAt)}) — shown once, copy it now:`),
            h('pre', { 'data-testid': 'api-key-token' }, r.token),
            done,
          );
        },
        (err: unknown) => msg.set('error', errorText(err)),
      );
    });
    return [apiKeys.length ? table(['Name', 'Scopes', 'Project', 'Expires', 'Last used', ''], rows, 'api-keys') : h('p', { class: 'muted' }, 'No API keys.'), form, shown, msg];
  });

  append(main, h('h1', {}, 'My security'), current, notices, sessions, totp, passkeys, keys);
}
