// In-place step-up: when an action answers 428 mfa_required, ask for a fresh second factor
// without leaving the page, then retry the action once.
import { ApiError, auth, setCsrfToken } from './api.ts';
import { errorText } from './app.ts';
import { field, h, status } from './dom.ts';

/** Runs `action`; on 428 asks for a TOTP code in a dialog, steps up, and retries. */
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

function askForCode(why: string): Promise<boolean> {
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
    const form = h('form', {}, field('Code from your authenticator app', code));
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => finish(false) }, 'Cancel');
    form.append(h('div', { class: 'actions' }, h('button', { type: 'submit', 'data-testid': 'stepup-submit' }, 'Verify and continue'), cancel));
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
