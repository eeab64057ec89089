import { ApiError, auth, setCsrfToken } from '../api.ts';
import { errorText, resume, state } from '../app.ts';
import { append, field, h, status } from '../dom.ts';

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
            go('/security?enroll=1');
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
    const f = h('form', { class: 'card narrow' }, h('h1', {}, 'Second factor'), m2, field('Code from your authenticator app (or a recovery code)', code), h('button', { type: 'submit' }, 'Verify'));
    if (!methods.includes('totp')) m2.set('info', `Use one of: ${methods.join(', ')}.`);
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        try {
          const r = await auth.loginTotp(mfaToken, code.value.trim());
          setCsrfToken(r.csrfToken);
          await done();
        } catch (err) {
          m2.set('error', err instanceof ApiError && err.status === 401 ? 'That code did not work. Sign in again if it keeps failing.' : errorText(err));
        }
      })();
    });
    form.replaceWith(f);
    code.focus();
  }

  append(main, form);
  username.focus();
}
