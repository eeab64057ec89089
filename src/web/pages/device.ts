// Device approval for `modelkeep login` (RFC 8628): shows the code, the requesting client,
// the scopes it asks for and where the request came from (address, user agent), then
// approves or denies. When the server wants a fresh second factor first (428), it is asked
// for in place and the approval retried.
import { auth, type DeviceInfo } from '../api.ts';
import { errorText, type PageContext } from '../app.ts';
import { append, field, h, status, when } from '../dom.ts';
import { capabilitiesFor } from '../perms.ts';
import { withStepUp } from '../stepup.ts';

function details(d: DeviceInfo): HTMLElement {
  const row = (k: string, v: string, id: string) => h('tr', {}, h('th', {}, k), h('td', { 'data-testid': id }, v));
  return h(
    'table',
    { class: 'kv', 'data-testid': 'device-details' },
    h(
      'tbody',
      {},
      row('Code', d.userCode, 'device-code'),
      row('Client', d.clientId, 'device-client'),
      row('Asks for', d.scopes.join(', ') || '—', 'device-scopes'),
      row('Requested from', d.ip ?? 'unknown address', 'device-ip'),
      row('Program', d.userAgent ?? 'unknown', 'device-user-agent'),
      row('Requested', when(d.requestedAt), 'device-requested'),
      row('Valid until', when(d.expiresAt), 'device-expires'),
    ),
  );
}

export async function renderDevice(main: HTMLElement, ctx: PageContext): Promise<void> {
  ctx.setSummary(await capabilitiesFor(ctx.me.roles, null, null));
  const code = h('input', { name: 'userCode', value: ctx.query.get('userCode') ?? ctx.query.get('user_code') ?? '', autocomplete: 'off', 'data-testid': 'user-code' });
  const msg = status();
  const detail = h('div', {});
  const form = h(
    'form',
    { class: 'card narrow' },
    h('h1', {}, 'Approve a device'),
    h('p', {}, 'Enter the code that `modelkeep login` shows. Approve only a code you started yourself, from a place you recognise.'),
    field('Code', code),
    h('button', { type: 'submit', 'data-testid': 'device-lookup' }, 'Look up'),
    msg,
    detail,
  );
  const lookUp = async () => {
    msg.set('info', '');
    try {
      const d = await auth.device(code.value.trim().toUpperCase());
      const approve = h('button', { type: 'button', 'data-testid': 'device-approve' }, 'Approve');
      const deny = h('button', { type: 'button', class: 'danger', 'data-testid': 'device-deny' }, 'Deny');
      const decided = (text: string) => {
        msg.set('ok', text);
        approve.disabled = true;
        deny.disabled = true;
      };
      approve.addEventListener('click', () => {
        withStepUp(() => auth.approveDevice(d.userCode)).then(
          () => decided('Approved. Return to your terminal.'),
          (err: unknown) => msg.set('error', errorText(err)),
        );
      });
      deny.addEventListener('click', () => {
        auth.denyDevice(d.userCode).then(
          () => decided('Denied. The device gets no access.'),
          (err: unknown) => msg.set('error', errorText(err)),
        );
      });
      detail.replaceChildren(
        details(d),
        d.mfaRequired ? h('p', { class: 'muted' }, 'Approving asks for a fresh second factor.') : '',
        h('div', { class: 'actions' }, approve, deny),
      );
    } catch (err) {
      detail.replaceChildren();
      msg.set('error', errorText(err));
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void lookUp();
  });
  append(main, form);
  // Opened from the verification link: look the code up straight away (a read; approving stays a click).
  if (code.value) await lookUp();
}
