// My security: sessions (revoke one or all), TOTP enrollment (QR code, recovery codes shown
// once with a download), API keys (shown once). Each section degrades on its own when the
// server does not offer its API yet.
import QRCode from 'qrcode';
import { ApiError, auth, me } from '../api.ts';
import { errorText, type PageContext, sessionEnded, unavailable } from '../app.ts';
import { append, field, h, status, when } from '../dom.ts';
import { capabilitiesFor } from '../perms.ts';

async function section(title: string, build: () => Promise<HTMLElement[]>): Promise<HTMLElement> {
  const s = h('section', { class: 'card' }, h('h2', {}, title));
  try {
    append(s, ...(await build()));
  } catch (err) {
    if (err instanceof ApiError && err.routeMissing) append(s, unavailable(title));
    else if (err instanceof ApiError && err.status === 401) throw err;
    else append(s, h('p', { class: 'status error' }, errorText(err)));
  }
  return s;
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
  if (ctx.query.get('enroll') === '1') append(current, h('p', { class: 'banner warn' }, 'Your account must use a second factor: set up an authenticator app below before anything else.'));

  const sessions = await section('Sessions and devices', async () => {
    const { sessions: list } = await me.sessions();
    const msg = status();
    const rows = list.map((x) => {
      const revoke = h('button', { type: 'button', class: 'secondary' }, x.current || x.id === s?.id ? 'Sign out here' : 'Revoke');
      revoke.addEventListener('click', () => {
        me.revokeSession(x.id).then(reload, (err: unknown) => msg.set('error', errorText(err)));
      });
      return h('tr', {}, h('td', {}, x.userAgent ?? '—'), h('td', {}, x.ip ?? '—'), h('td', {}, when(x.lastSeenAt)), h('td', {}, when(x.createdAt)), h('td', {}, revoke));
    });
    const all = h('button', { type: 'button', 'data-testid': 'logout-all' }, 'Sign out everywhere');
    all.addEventListener('click', () => {
      auth.logoutAll().then(
        () => sessionEnded('You signed out everywhere.'),
        (err: unknown) => msg.set('error', errorText(err)),
      );
    });
    return [
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'IP'), h('th', {}, 'Last seen'), h('th', {}, 'Signed in'), h('th', {}, ''))), h('tbody', {}, ...rows)),
      all,
      msg,
    ];
  });

  const mfa = await section('Authenticator app (TOTP)', async () => {
    const msg = status();
    const start = h('button', { type: 'button', 'data-testid': 'totp-enroll' }, 'Set up an authenticator app');
    const area = h('div', {});
    start.addEventListener('click', () => {
      void (async () => {
        try {
          const e = await me.enrollTotp();
          const canvas = h('canvas', { 'aria-label': 'QR code for your authenticator app' });
          await QRCode.toCanvas(canvas, e.otpauthUrl, { margin: 1, width: 200 });
          const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code' });
          const confirm = h('form', { class: 'inline' }, field('Code shown by the app', code), h('button', { type: 'submit' }, 'Confirm'));
          confirm.addEventListener('submit', (ev) => {
            ev.preventDefault();
            me.confirmTotp(code.value.trim()).then(
              (r) => {
                const text = `${r.recoveryCodes.join('\n')}\n`;
                const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
                area.replaceChildren(
                  h('p', {}, 'Recovery codes — shown once. Keep them somewhere safe; each works once.'),
                  h('pre', { 'data-testid': 'recovery-codes' }, text),
                  h('a', { href: url, download: 'modelkeep-recovery-codes.txt', class: 'button' }, 'Download the codes'),
                );
              },
              (err: unknown) => msg.set('error', errorText(err)),
            );
          });
          area.replaceChildren(canvas, h('p', {}, 'Or enter this key by hand: ', h('code', {}, e.secret)), confirm);
        } catch (err) {
          if (err instanceof ApiError && err.routeMissing) area.replaceChildren(unavailable('Authenticator app enrollment'));
          else msg.set('error', errorText(err));
        }
      })();
    });
    return [h('p', {}, 'Passkeys and recovery codes are managed here too once the server offers them.'), start, area, msg];
  });

  const keys = await section('API keys', async () => {
    const { apiKeys } = await me.apiKeys();
    const msg = status();
    const rows = apiKeys.map((k) => {
      const revoke = h('button', { type: 'button', class: 'secondary' }, 'Revoke');
      revoke.addEventListener('click', () => {
        me.revokeApiKey(k.id).then(reload, (err: unknown) => msg.set('error', errorText(err)));
      });
      return h('tr', {}, h('td', {}, k.name), h('td', {}, k.scopes.join(' ')), h('td', {}, k.project ?? 'all'), h('td', {}, when(k.expiresAt)), h('td', {}, when(k.lastUsedAt)), h('td', {}, revoke));
    });
    const name = h('input', { required: true });
    const scopes = h('input', { value: 'read download' });
    const project = h('input', { placeholder: 'any' });
    const days = h('input', { type: 'number', min: 1, max: 365, value: 30 });
    const shown = h('div', {});
    const form = h('form', { class: 'inline' }, field('Name', name), field('Scopes', scopes), field('Project', project), field('Expires in days', days), h('button', { type: 'submit' }, 'Create key'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      me.createApiKey({
        name: name.value,
        scopes: scopes.value.split(/\s+/).filter(Boolean),
        ...(project.value ? { project: project.value } : {}),
        expiresInDays: Number(days.value),
      }).then(
        (r) => shown.replaceChildren(h('p', {}, 'Your new key — shown once, copy it now:'), h('pre', {}, r.token)),
        (err: unknown) => msg.set('error', errorText(err)),
      );
    });
    return [
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Scopes'), h('th', {}, 'Project'), h('th', {}, 'Expires'), h('th', {}, 'Last used'), h('th', {}, ''))), h('tbody', {}, ...rows)),
      form,
      shown,
      msg,
    ];
  });

  append(main, h('h1', {}, 'My security'), current, sessions, mfa, keys);
}
