// Setting up an authenticator app: the otpauth URI as a QR code drawn on a <canvas> (no
// inline script or data: image needed), the key for typing by hand, a first code to
// confirm, then the recovery codes — shown once, with a download.
import QRCode from 'qrcode';
import { me } from '../api.ts';
import { errorText } from '../app.ts';
import { field, h, status } from '../dom.ts';

/** Shows recovery codes once, with a download button. */
export function recoveryCodesView(codes: string[]): HTMLElement {
  const text = `${codes.join('\n')}\n`;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  return h(
    'div',
    { 'data-testid': 'recovery-view' },
    h('p', {}, 'Recovery codes — shown once. Keep them somewhere safe; each works once, in place of a code from the app.'),
    h('pre', { 'data-testid': 'recovery-codes' }, text),
    h('a', { href: url, download: 'modelkeep-recovery-codes.txt', class: 'button', 'data-testid': 'recovery-download' }, 'Download the codes'),
  );
}

/** Begins enrollment in `area`; calls `done` with the recovery codes once a code is confirmed. */
export async function beginTotp(area: HTMLElement, done: (codes: string[]) => void): Promise<void> {
  const e = await me.enrollTotp();
  const canvas = h('canvas', { 'aria-label': 'QR code for your authenticator app', 'data-testid': 'totp-qr' });
  await QRCode.toCanvas(canvas, e.otpauthUrl, { margin: 1, width: 200 });
  const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', 'data-testid': 'totp-confirm-code' });
  const msg = status();
  const confirm = h('form', { class: 'inline' }, field('Code shown by the app', code), h('button', { type: 'submit', 'data-testid': 'totp-confirm' }, 'Confirm'));
  confirm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    me.confirmTotp(code.value.trim()).then(
      (r) => done(r.recoveryCodes),
      (err: unknown) => msg.set('error', errorText(err)),
    );
  });
  area.replaceChildren(
    h('p', {}, 'Scan this with your authenticator app:'),
    canvas,
    h('p', {}, 'Or enter this key by hand: ', h('code', { 'data-testid': 'totp-secret' }, e.secret)),
    confirm,
    msg,
  );
  code.focus();
}
