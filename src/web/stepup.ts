// In-place step-up: when an action answers 428 mfa_required, ask for a fresh second factor
// without leaving the page, then retry the action once.
import { ApiError, auth, type MfaStatus, me, setCsrfToken } from './api.ts';
import { errorText } from './app.ts';
import { field, h, status } from './dom.ts';
import { usePasskey } from './webauthn.ts';

/** Runs `action`; on 428 asks for a fresh second factor (TOTP code or passkey) in a dialog, steps up, and retries. */
export async function withStepUp<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'mfa_required')) throw err;
    const ok = await askForCode(err.message);
    if (!ok) throw err;
    return action();
  }
}

async function factors(): Promise<MfaStatus | null> {
  try {
    return await me.mfa();
  } catch {
    return null; // unknown: offer both
  }
}

async function askForCode(why: string): Promise<boolean> {
  const f = await factors();
  const hasTotp = f ? f.totp : true;
  const hasPasskey = f ? f.factors > (f.totp ? 1 : 0) : true;
  return new Promise((resolve) => {
    const code = h('input', { inputmode: 'numeric', autocomplete: 'one-time-code', 'data-testid': 'stepup-code' });
    const msg = status();
    const dialog = h(
      'dialog',
      { class: 'card', 'data-testid': 'stepup-dialog' },
      h('h2', {}, 'Confirm it is you'),
      h('p', {}, `This action needs a recent second-factor check: ${why}`),
      msg,
    );
    const form = h('form', {});
    if (hasTotp) form.append(field('Code from your authenticator app', code));
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => finish(false) }, 'Cancel');
    const passkey = h('button', { type: 'button', class: 'secondary', 'data-testid': 'stepup-passkey' }, 'Use a passkey');
    passkey.addEventListener('click', () => {
      void (async () => {
        try {
          const r = await auth.stepUpPasskey(await usePasskey(await auth.stepUpPasskeyOptions()));
          if (r.csrfToken) setCsrfToken(r.csrfToken);
          finish(true);
        } catch (err) {
          msg.set('error', errorText(err));
        }
      })();
    });
    if (!hasTotp && !hasPasskey) msg.set('error', 'Your account has no second factor yet: set one up on My security (or sign out and in again), then retry.');
    form.append(
      h('div', { class: 'actions' }, hasTotp ? h('button', { type: 'submit', 'data-testid': 'stepup-submit' }, 'Verify and continue') : null, hasPasskey ? passkey : null, cancel),
    );
    dialog.append(form);
    const finish = (v: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        try {
          const r = await auth.stepUpTotp(code.value.trim());
          // Step-up rotates the session: a new CSRF token comes with it.
          if (r.csrfToken) setCsrfToken(r.csrfToken);
          finish(true);
        } catch (err) {
          msg.set('error', errorText(err));
        }
      })();
    });
    document.body.append(dialog);
    dialog.showModal();
    code.focus();
  });
}

/** A confirmation that names exactly what will happen. */
export function confirmAction(title: string, text: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'card', 'data-testid': 'confirm-dialog' }, h('h2', {}, title), h('p', { 'data-testid': 'confirm-text' }, text));
    const finish = (v: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(v);
    };
    dialog.append(
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', 'data-testid': 'confirm-yes', onclick: () => finish(true) }, confirmLabel),
        h('button', { type: 'button', class: 'secondary', 'data-testid': 'confirm-no', onclick: () => finish(false) }, 'Cancel'),
      ),
    );
    dialog.addEventListener('cancel', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}
