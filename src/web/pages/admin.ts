// Administration: users (create, deactivate — showing how many sessions ended), project
// access bindings with expiry, service accounts.
import { ApiError, admin } from '../api.ts';
import { errorText, type PageContext, unavailable } from '../app.ts';
import { append, denied, field, h, status, when } from '../dom.ts';
import { capabilitiesFor } from '../perms.ts';

const ROLES = ['viewer', 'data-scientist', 'ml-engineer', 'release-manager', 'auditor', 'project-admin'];

export async function renderUsers(main: HTMLElement, ctx: PageContext): Promise<void> {
  const caps = await capabilitiesFor(ctx.me.roles, null, null);
  ctx.setSummary(caps);
  const can = caps.check('user:manage');
  append(main, h('h1', {}, 'Users'));
  if (!can.allowed) {
    append(main, h('p', { class: 'denied', 'data-testid': 'denied-reason' }, can.reason, ' ', h('em', {}, can.hint)));
    return;
  }
  const msg = status();
  const { users } = await admin.users();
  const rows = users.map((u) => {
    const b = h('button', { type: 'button', class: 'danger', 'data-testid': `deactivate-${u.username}` }, 'Deactivate');
    b.addEventListener('click', () => {
      admin.deactivate(u.id).then(
        (r) => {
          msg.set('ok', `${r.user.username} is deactivated; ${r.sessionsEnded} session(s) ended.`);
          b.replaceWith(h('span', {}, 'deactivated'));
        },
        (err: unknown) => msg.set('error', errorText(err)),
      );
    });
    return h('tr', {}, h('td', {}, u.username), h('td', {}, u.email ?? ''), h('td', {}, u.status), h('td', {}, when(u.createdAt)), h('td', {}, u.status === 'active' ? b : when(u.deactivatedAt)));
  });
  const username = h('input', { required: true, 'data-testid': 'new-username' });
  const email = h('input', { type: 'email' });
  const password = h('input', { type: 'password', autocomplete: 'new-password' });
  const form = h('form', { class: 'inline' }, field('Username', username), field('Email', email), field('Initial password', password), h('button', { type: 'submit', 'data-testid': 'create-user' }, 'Create user'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    admin
      .createUser({ username: username.value, ...(email.value ? { email: email.value } : {}), ...(password.value ? { password: password.value } : {}) })
      .then(() => ctx.go('/admin/users'), (err: unknown) => msg.set('error', errorText(err)));
  });

  const sa = h('section', { class: 'card' }, h('h2', {}, 'Service accounts'));
  const saName = h('input', { required: true, 'data-testid': 'sa-name' });
  const saProject = h('input', { required: true, 'data-testid': 'sa-project' });
  const saRole = h('select', { 'data-testid': 'sa-role' }, ...ROLES.map((r) => h('option', { value: r }, r)));
  const saOut = h('div', {});
  const saForm = h(
    'form',
    { class: 'inline' },
    field('Name', saName),
    field('Project', saProject),
    field('Role', saRole),
    h('button', { type: 'submit', 'data-testid': 'sa-create' }, 'Create service account'),
  );
  saForm.addEventListener('submit', (e) => {
    e.preventDefault();
    admin.createServiceAccount({ name: saName.value, project: saProject.value, roles: [saRole.value] }).then(
      (r) =>
        saOut.replaceChildren(
          h('p', {}, `Service account ${r.name} in ${r.project} (scopes ${r.scopes.join(' ')}). Client secret — shown once, store it in your CI's secret store now:`),
          h('pre', { 'data-testid': 'sa-secret' }, `client_id=${r.clientId}\nclient_secret=${r.clientSecret}`),
        ),
      (err: unknown) => saOut.replaceChildren(err instanceof ApiError && err.routeMissing ? unavailable('Service accounts') : h('p', { class: 'status error' }, errorText(err))),
    );
  });
  append(sa, saForm, saOut);

  append(
    main,
    msg,
    h('table', { 'data-testid': 'users' }, h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'Email'), h('th', {}, 'Status'), h('th', {}, 'Created'), h('th', {}, ''))), h('tbody', {}, ...rows)),
    form,
    sa,
  );
}

export async function renderBindings(main: HTMLElement, ctx: PageContext): Promise<void> {
  const p = ctx.params.project ?? '';
  const caps = await capabilitiesFor(ctx.me.roles, p, `project:${p}`);
  ctx.setSummary(caps);
  append(main, h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ', h('a', { href: `#/projects/${encodeURIComponent(p)}` }, p), ' / access'), h('h1', {}, `Access to ${p}`));
  const read = caps.check('binding:read');
  if (!read.allowed) {
    append(main, h('p', { class: 'denied', 'data-testid': 'denied-reason' }, read.reason, ' ', h('em', {}, read.hint)));
    return;
  }
  const msg = status();
  const manage = caps.check('binding:manage');
  const { bindings } = await admin.bindings(p);
  const rows = bindings.map((b) => {
    const remove = h('button', { type: 'button', class: 'secondary' }, 'Remove');
    remove.addEventListener('click', () => {
      admin.removeBinding(p, b.id).then(() => ctx.go(`/projects/${encodeURIComponent(p)}/access`), (err: unknown) => msg.set('error', errorText(err)));
    });
    return h(
      'tr',
      {},
      h('td', {}, b.principal),
      h('td', {}, b.role),
      h('td', {}, b.expiresAt ? when(b.expiresAt) : 'never'),
      h('td', {}, b.createdBy),
      h('td', {}, manage.allowed ? remove : denied(remove, manage.reason, manage.hint)),
    );
  });
  const principal = h('input', { placeholder: 'user:NAME or service:NAME', required: true, 'data-testid': 'binding-principal' });
  const role = h('select', { 'data-testid': 'binding-role' }, ...ROLES.map((r) => h('option', { value: r }, r)));
  const expires = h('input', { type: 'datetime-local', 'data-testid': 'binding-expires' });
  const add = h('button', { type: 'submit', 'data-testid': 'binding-add' }, 'Grant');
  const form = h('form', { class: 'inline' }, field('Principal', principal), field('Role', role), field('Expires (optional)', expires), manage.allowed ? add : denied(add, manage.reason, manage.hint));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const at = expires.value ? new Date(expires.value).toISOString() : undefined;
    admin
      .addBinding(p, { principal: principal.value, role: role.value, ...(at ? { expiresAt: at } : {}) })
      .then(() => ctx.go(`/projects/${encodeURIComponent(p)}/access`), (err: unknown) => msg.set('error', errorText(err)));
  });
  append(
    main,
    msg,
    h('table', { 'data-testid': 'bindings' }, h('thead', {}, h('tr', {}, h('th', {}, 'Principal'), h('th', {}, 'Role'), h('th', {}, 'Expires'), h('th', {}, 'Granted by'), h('th', {}, ''))), h('tbody', {}, ...rows)),
    form,
  );
}
