// Projects → models → versions → artifacts: browse, create, upload with progress,
// finalize, download, promote (with a confirmation naming the stage, and step-up on 428).
import { artifactUrl, registry, type Stage, type Version } from '../api.ts';
import type { PageContext } from '../app.ts';
import { errorText } from '../app.ts';
import { append, bytes, denied, field, h, status, when } from '../dom.ts';
import { type Action, type Capabilities, capabilitiesFor } from '../perms.ts';
import { confirmAction, withStepUp } from '../stepup.ts';
import { cryptoAvailable, fileSha256 } from '../verify.ts';

const enc = encodeURIComponent;

/** A button that works when allowed, or is shown disabled with the reason and a hint. */
function guarded(caps: Capabilities, action: Action, button: HTMLButtonElement): HTMLElement {
  const c = caps.check(action);
  if (c.allowed) return button;
  // Not a refusal: the action asks for a fresh second factor in place (428) and then works.
  if (c.mfaRequired) return h('span', { class: 'control-mfa' }, button, h('span', { class: 'muted', 'data-testid': 'mfa-note' }, ' needs a fresh sign-in factor'));
  return denied(button, c.reason, c.hint);
}

function stageBadge(stage: Stage, state?: string): HTMLElement {
  return h('span', { class: `badge stage-${stage}`, 'data-testid': 'stage' }, state === 'draft' ? 'draft' : stage === 'none' ? 'ready' : stage);
}

export async function renderProjects(main: HTMLElement, ctx: PageContext): Promise<void> {
  const caps = await capabilitiesFor(ctx.me.roles, null, null);
  ctx.setSummary(caps);
  const { projects } = await registry.projects();
  const list = h(
    'table',
    { 'data-testid': 'projects' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Project'), h('th', {}, 'Description'), h('th', {}, 'Your roles'))),
    h(
      'tbody',
      {},
      ...projects.map((p) =>
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: `#/projects/${enc(p.name)}` }, p.name)),
          h('td', {}, p.description),
          h(
            'td',
            {},
            ctx.me.roles
              .filter((r) => r.scope === `project:${p.name}`)
              .map((r) => r.role)
              .join(', ') || '—',
          ),
        ),
      ),
    ),
  );
  const name = h('input', { name: 'name', pattern: '[a-z0-9][a-z0-9-]{0,62}', required: true });
  const desc = h('input', { name: 'description' });
  const msg = status();
  const create = h('button', { type: 'submit' }, 'Create project');
  const form = h('form', { class: 'inline' }, field('New project', name), field('Description', desc), guarded(caps, 'project:create', create), msg);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void registry
      .createProject(name.value, desc.value)
      .then(() => ctx.go(`/projects/${enc(name.value)}`))
      .catch((err: unknown) => msg.set('error', errorText(err)));
  });
  append(main, h('h1', {}, 'Projects'), projects.length ? list : h('p', {}, 'You cannot see any project yet. Ask a project-admin to add you.'), form);
}

export async function renderProject(main: HTMLElement, ctx: PageContext): Promise<void> {
  const p = ctx.params.project ?? '';
  const caps = await capabilitiesFor(ctx.me.roles, p, `project:${p}`);
  ctx.setSummary(caps);
  const { models } = await registry.models(p);
  const table = h(
    'table',
    { 'data-testid': 'models' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Model'), h('th', {}, 'Sensitivity'), h('th', {}, 'Description'), h('th', {}, 'Created'))),
    h(
      'tbody',
      {},
      ...models.map((m) =>
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: `#/projects/${enc(p)}/models/${enc(m.name)}` }, m.name)),
          h('td', {}, h('span', { class: `badge sens-${m.sensitivity}` }, m.sensitivity)),
          h('td', {}, m.description),
          h('td', {}, when(m.createdAt)),
        ),
      ),
    ),
  );
  const name = h('input', { name: 'name', pattern: '[a-z0-9][a-z0-9-]{0,62}', required: true, 'data-testid': 'model-name' });
  const desc = h('input', { name: 'description' });
  const sens = h('select', { name: 'sensitivity' }, h('option', { value: 'internal' }, 'internal'), h('option', { value: 'restricted' }, 'restricted'));
  const msg = status();
  const form = h(
    'form',
    { class: 'inline' },
    field('New model', name),
    field('Description', desc),
    field('Sensitivity', sens),
    guarded(caps, 'model:create', h('button', { type: 'submit', 'data-testid': 'create-model' }, 'Create model')),
    msg,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void registry
      .createModel(p, { name: name.value, description: desc.value, sensitivity: sens.value === 'restricted' ? 'restricted' : 'internal' })
      .then(() => ctx.go(`/projects/${enc(p)}/models/${enc(name.value)}`))
      .catch((err: unknown) => msg.set('error', errorText(err)));
  });
  append(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ', p),
    h('h1', {}, p, ' ', h('a', { class: 'small', href: `#/projects/${enc(p)}/access` }, 'Access')),
    models.length ? table : h('p', {}, 'No models yet.'),
    form,
  );
}

export async function renderModel(main: HTMLElement, ctx: PageContext): Promise<void> {
  const p = ctx.params.project ?? '';
  const m = ctx.params.model ?? '';
  const caps = await capabilitiesFor(ctx.me.roles, p, `model:${p}/${m}`);
  ctx.setSummary(caps);
  const [model, { versions }] = await Promise.all([registry.model(p, m), registry.versions(p, m)]);
  const rows = [...versions].sort((a, b) => b.version - a.version);
  const table = h(
    'table',
    { 'data-testid': 'versions' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Stage'), h('th', {}, 'Artifacts'), h('th', {}, 'Created by'), h('th', {}, 'Created'))),
    h(
      'tbody',
      {},
      ...rows.map((v) =>
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: `#/projects/${enc(p)}/models/${enc(m)}/versions/${v.version}` }, `v${v.version}`)),
          h('td', {}, stageBadge(v.stage, v.state)),
          h('td', {}, String(v.artifacts.length)),
          h('td', {}, v.createdBy),
          h('td', {}, when(v.createdAt)),
        ),
      ),
    ),
  );
  const msg = status();
  const desc = h('input', { name: 'description', 'data-testid': 'version-description' });
  const form = h('form', { class: 'inline' }, field('Description', desc), guarded(caps, 'version:create', h('button', { type: 'submit', 'data-testid': 'create-version' }, 'New version')), msg);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void registry
      .createVersion(p, m, desc.value)
      .then((v) => ctx.go(`/projects/${enc(p)}/models/${enc(m)}/versions/${v.version}`))
      .catch((err: unknown) => msg.set('error', errorText(err)));
  });
  append(
    main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, 'Projects'), ' / ', h('a', { href: `#/projects/${enc(p)}` }, p), ' / ', m),
    h('h1', {}, m, ' ', h('span', { class: `badge sens-${model.sensitivity}` }, model.sensitivity)),
    model.description ? h('p', {}, model.description) : null,
    versions.length ? table : h('p', {}, 'No versions yet.'),
    form,
  );
}

export async function renderVersion(main: HTMLElement, ctx: PageContext): Promise<void> {
  const p = ctx.params.project ?? '';
  const m = ctx.params.model ?? '';
  const n = Number(ctx.params.version);
  const caps = await capabilitiesFor(ctx.me.roles, p, `version:${p}/${m}/${n}`);
  ctx.setSummary(caps);
  const v: Version = await registry.version(p, m, n);
  const reload = () => ctx.go(`/projects/${enc(p)}/models/${enc(m)}/versions/${n}`);
  const msg = status();

  const download = caps.check('artifact:download');
  const artifactRow = (a: { path: string; size: number; sha256: string }) => {
    const link = download.allowed
      ? h('a', { href: artifactUrl(p, m, n, a.path), download: a.path.split('/').pop() ?? 'artifact', class: 'button', 'data-testid': 'download' }, 'Download')
      : denied(h('button', { type: 'button' }, 'Download'), download.reason, download.hint);
    return h('tr', {}, h('td', {}, a.path), h('td', {}, bytes(a.size)), h('td', { class: 'digest', title: a.sha256 }, a.sha256), h('td', {}, link));
  };
  const tbody = h('tbody', {}, ...v.artifacts.map(artifactRow));
  const artifacts = h('table', { 'data-testid': 'artifacts' }, h('thead', {}, h('tr', {}, h('th', {}, 'Path'), h('th', {}, 'Size'), h('th', {}, 'SHA-256'), h('th', {}, ''))), tbody);

  const sections: (HTMLElement | null)[] = [];
  if (v.state === 'draft') {
    const file = h('input', { type: 'file', 'data-testid': 'upload-file' });
    const path = h('input', { name: 'path', placeholder: 'same as the file name', 'data-testid': 'upload-path' });
    const bar = h('progress', { max: 100, value: 0, 'data-testid': 'upload-progress' });
    const label = h('span', { class: 'progress-label' });
    const upMsg = status();
    const up = h(
      'form',
      { class: 'inline', 'data-testid': 'upload-form' },
      field('File', file),
      field('Path in the version', path),
      guarded(caps, 'artifact:upload', h('button', { type: 'submit', 'data-testid': 'upload' }, 'Upload')),
      bar,
      label,
      upMsg,
    );
    up.addEventListener('submit', (e) => {
      e.preventDefault();
      const f = file.files?.[0];
      if (!f) {
        upMsg.set('error', 'Choose a file first.');
        return;
      }
      const target = path.value.trim() || f.name;
      void (async () => {
        try {
          // The digest travels with the upload so the server refuses a corrupted body; skipped for very large files.
          const digest = cryptoAvailable() && f.size <= 256 * 1024 * 1024 ? await fileSha256(f) : null;
          upMsg.set('info', 'Uploading…');
          const a = await registry.upload(p, m, n, target, f, digest, (sent, total) => {
            bar.value = total > 0 ? Math.round((sent / total) * 100) : 0;
            label.textContent = `${bytes(sent)} of ${bytes(total)}`;
          });
          bar.value = 100;
          upMsg.set('ok', `Uploaded ${a.path} (${bytes(a.size)}, sha256 ${a.sha256.slice(0, 12)}…)`);
          // Shown in place (the form stays for the next file); a re-upload of a path replaces its row.
          for (const row of Array.from(tbody.rows)) if (row.cells[0]?.textContent === a.path) row.remove();
          tbody.append(artifactRow(a));
          file.value = '';
          path.value = '';
        } catch (err) {
          upMsg.set('error', errorText(err));
        }
      })();
    });
    const fin = h('button', { type: 'button', 'data-testid': 'finalize' }, 'Finalize version');
    fin.addEventListener('click', () => {
      void confirmAction('Finalize', `Finalize ${p}/${m} v${n}? A ready version can no longer change.`, 'Finalize').then((yes) => {
        if (!yes) return;
        registry.finalize(p, m, n).then(reload, (err: unknown) => msg.set('error', errorText(err)));
      });
    });
    sections.push(h('section', {}, h('h2', {}, 'Upload an artifact'), up), h('section', {}, guarded(caps, 'version:finalize', fin)));
  } else {
    const targets: { stage: Stage; action: Action; label: string }[] = [
      { stage: 'staging', action: 'version:promote:staging', label: 'Promote to staging' },
      { stage: 'production', action: 'version:promote:production', label: 'Promote to production' },
      { stage: 'archived', action: 'version:promote:archived', label: 'Archive' },
    ];
    const buttons = targets
      .filter((t) => t.stage !== v.stage)
      .map((t) => {
        const b = h('button', { type: 'button', 'data-testid': `promote-${t.stage}` }, t.label);
        b.addEventListener('click', () => {
          void (async () => {
            const yes = await confirmAction(t.label, `Move ${p}/${m} v${n} from ${v.stage === 'none' ? 'no stage' : v.stage} to ${t.stage.toUpperCase()}?`, `Yes, move to ${t.stage}`);
            if (!yes) return;
            try {
              const r = await withStepUp(() => registry.promote(p, m, n, t.stage));
              msg.set('ok', `v${n} is now in ${r.stage}.`);
              reload();
            } catch (err) {
              msg.set('error', errorText(err));
            }
          })();
        });
        // Leaving production is a release decision too.
        const action: Action = v.stage === 'production' ? 'version:promote:production' : t.action;
        return guarded(caps, action, b);
      });
    sections.push(h('section', { 'data-testid': 'promote' }, h('h2', {}, 'Stage'), h('div', { class: 'actions' }, ...buttons)));
  }

  append(
    main,
    h(
      'p',
      { class: 'crumbs' },
      h('a', { href: '#/projects' }, 'Projects'),
      ' / ',
      h('a', { href: `#/projects/${enc(p)}` }, p),
      ' / ',
      h('a', { href: `#/projects/${enc(p)}/models/${enc(m)}` }, m),
      ' / ',
      `v${n}`,
    ),
    h('h1', {}, `${m} v${n} `, stageBadge(v.stage, v.state)),
    h('p', { class: 'meta' }, `Created by ${v.createdBy} on ${when(v.createdAt)}`, v.description ? ` — ${v.description}` : ''),
    msg,
    h('h2', {}, 'Artifacts'),
    artifacts,
    ...sections,
  );
}
