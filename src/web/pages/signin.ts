import { ApiError, auth, setCsrfToken } from '../api.ts';
import { errorText, resume, state } from '../app.ts';
import { append, field, h, status } from '../dom.ts';
import { passkeysSupported, usePasskey } from '../webauthn.ts';

/** Sign-in: password, then a second factor when the account has one. Errors never say which part was wrong. */
export async function renderSignIn(main: HTMLElement, query: URLSearchParams, go: (hash: string) => void): Promise<void> {
  const next = query.get('next') ?? '/projects';
  // Only a path inside this page's hash routes (never another origin).
  const safeNext = /^\/[A-Za-z0-9/_.@%?=&-]*$/.test(next) ? next : '/projects';
  const msg = status();
  if (state.endedMessage) msg.set('info', state.endedMessage);
  state.endedMessage = null;

  const done = async () => {
    await resume();
    go(safeNext);
  };

  const username = h('input', { name: 'username', autocomplete: 'username', required: true, 'data-testid': 'username' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'password' });
  const form = h(
    'form',
    { class: 'card narrow', 'data-testid': 'sign-in-form' },
    h('h1', {}, 'Sign in'),
    msg,
    field('Username', username),
    field('Password', password),
    h('button', { type: 'submit', 'data-testid': 'sign-in' }, 'Sign in'),
  );
  // Passwordless: the passkey (with user verification) is the whole sign-in.
  const passkeyButton = h('button', { type: 'button', class: 'secondary', 'data-testid': 'sign-in-passkey' }, 'Sign in with a passkey');
  passkeyButton.addEventListener('click', () => {
    void (async () => {
      msg.set('info', 'Waiting for your passkey…');
      try {
        const options = await auth.passkeyOptions(username.value.trim() || undefined);
        const r = await auth.passkeyLogin(await usePasskey(options));
        setCsrfToken(r.csrfToken);
        await done();
      } catch (err) {
        msg.set('error', err instanceof ApiError && err.status === 401 ? 'That passkey was not accepted.' : errorText(err));
      }
    })();
  });
  if (passkeysSupported()) form.append(h('div', { class: 'actions' }, passkeyButton));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void (async () => {
      msg.set('info', 'Signing in…');
      try {
        const r = await auth.login(username.value, password.value);
        password.value = '';
        if (r.status === 'ok') {
          setCsrfToken(r.csrfToken);
          if (r.mfaEnrollmentRequired) {
            state.endedMessage = null;
            await resume();
            go('/enroll');
            return;
          }
          await done();
          return;
        }
        secondFactor(r.mfaToken, r.methods);
      } catch (err) {
        password.value = '';
        msg.set('error', err instanceof ApiError && err.code === 'invalid_credentials' ? 'Invalid username or password.' : errorText(err));
      }
    })();
  });

  function secondFactor(mfaToken: string, methods: string[]): void {
    const code = h('input', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', 'data-testid': 'totp-code' });
    const m2 = status();
    const f = h('form', { class: 'card narrow', 'data-testid': 'second-factor' }, h('h1', {}, 'Second factor'), m2);
    let recovery = false;
    const label = h('span', {}, 'Code from your authenticator app');
    const codeField = h('label', { class: 'field' }, label, code);
    const submit = h('button', { type: 'submit', 'data-testid': 'verify' }, 'Verify');
    const useRecovery = h('button', { type: 'button', class: 'link', 'data-testid': 'use-recovery' }, 'Use a recovery code instead');
    useRecovery.addEventListener('click', () => {
      recovery = true;
      label.textContent = 'Recovery code (each works once)';
      code.removeAttribute('inputmode');
      code.setAttribute('data-testid', 'recovery-code');
      useRecovery.remove();
      code.value = '';
      code.focus();
    });
    const passkey = h('button', { type: 'button', class: 'secondary', 'data-testid': 'mfa-passkey' }, 'Use a passkey');
    passkey.addEventListener('click', () => {
      void (async () => {
        try {
          const r = await auth.mfaPasskey(mfaToken, await usePasskey(await auth.mfaPasskeyOptions(mfaToken)));
          setCsrfToken(r.csrfToken);
          await done();
        } catch (err) {
          m2.set('error', err instanceof ApiError && err.status === 401 ? 'That passkey was not accepted. Sign in again if it keeps failing.' : errorText(err));
        }
      })();
    });
    if (methods.includes('totp')) append(f, codeField, h('div', { class: 'actions' }, submit, methods.includes('recovery') ? useRecovery : null));
    if (methods.includes('webauthn')) append(f, h('div', { class: 'actions' }, passkey));
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        try {
          const r = recovery ? await auth.loginRecovery(mfaToken, code.value.trim()) : await auth.loginTotp(mfaToken, code.value.trim());
          setCsrfToken(r.csrfToken);
          await done();
        } catch (err) {
          m2.set('error', err instanceof ApiError && err.status === 401 ? 'That code did not work. Sign in again if it keeps failing.' : errorText(err));
        }
      })();
    });
    form.replaceWith(f);
    if (methods.includes('totp')) code.focus();
  }

  append(main, form);
  username.focus();
}
