// Device approval for `modelkeep login`: shows the code and the requesting client, and
// approves or denies (the server asks for a fresh second factor where the account has one).
import { ApiError, auth } from '../api.ts';
import { errorText, type PageContext, unavailable } from '../app.ts';
import { append, field, h, status, when } from '../dom.ts';
import { capabilitiesFor } from '../perms.ts';
import { withStepUp } from '../stepup.ts';

export async function renderDevice(main: HTMLElement, ctx: PageContext): Promise<void> {
  ctx.setSummary(await capabilitiesFor(ctx.me.roles, null, null));
  const code = h('input', { name: 'userCode', value: ctx.query.get('userCode') ?? ctx.query.get('user_code') ?? '', autocomplete: 'off', 'data-testid': 'user-code' });
  const msg = status();
  const detail = h('div', {});
  const form = h('form', { class: 'card narrow' }, h('h1', {}, 'Approve a device'), h('p', {}, 'Enter the code that `modelkeep login` shows. Approve only a code you started yourself.'), field('Code', code), h('button', { type: 'submit' }, 'Look up'), msg, detail);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      try {
        const d = await auth.device(code.value.trim().toUpperCase());
        const approve = h('button', { type: 'button' }, 'Approve');
        const deny = h('button', { type: 'button', class: 'danger' }, 'Deny');
        approve.addEventListener('click', () => {
          withStepUp(() => auth.approveDevice(d.userCode)).then(
            () => msg.set('ok', 'Approved. Return to your terminal.'),
            (err: unknown) => msg.set('error', errorText(err)),
          );
        });
        deny.addEventListener('click', () => {
          auth.denyDevice(d.userCode).then(
            () => msg.set('ok', 'Denied.'),
            (err: unknown) => msg.set('error', errorText(err)),
          );
        });
        detail.replaceChildren(
          h('p', {}, `Code ${d.userCode} from client ${d.clientName ?? d.clientId}${d.scope ? ` asking for ${d.scope}` : ''}${d.expiresAt ? `, valid until ${when(d.expiresAt)}` : ''}.`),
          h('div', { class: 'actions' }, approve, deny),
        );
      } catch (err) {
        if (err instanceof ApiError && err.routeMissing) detail.replaceChildren(unavailable('Device approval'));
        else msg.set('error', errorText(err));
      }
    })();
  });
  append(main, form);
}
