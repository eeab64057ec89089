// Mandatory second factor (mfa.requiredForAdmins): an administrator without one is sent
// here after the password and can reach nothing else until an authenticator app is set up
// (the server refuses every other route meanwhile with mfa_enrollment_required).
import { type PageContext, resume, state } from '../app.ts';
import { append, h } from '../dom.ts';
import { beginTotp, recoveryCodesView } from './totp.ts';

export async function renderEnroll(main: HTMLElement, ctx: PageContext): Promise<void> {
  const area = h('div', {});
  const card = h(
    'section',
    { class: 'card narrow', 'data-testid': 'enroll' },
    h('h1', {}, 'Set up a second factor'),
    h('p', { class: 'banner warn' }, 'Your account administers this server, so it must use a second factor. Set up an authenticator app to continue.'),
    area,
  );
  append(main, card);
  await beginTotp(area, (codes) => {
    const next = h('button', { type: 'button', 'data-testid': 'enroll-continue' }, 'I have saved the codes — continue');
    next.addEventListener('click', () => {
      state.me = null;
      void resume().then(() => ctx.go('/projects'));
    });
    area.replaceChildren(h('p', { class: 'status ok' }, 'Your authenticator app is set up.'), recoveryCodesView(codes), next);
  });
}
