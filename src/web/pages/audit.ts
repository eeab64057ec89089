// Audit: the events the caller may read, with filters; the current signed tree head; and
// a "verify" action that checks, in this browser, the head's signature, its consistency
// with the previous head, and the inclusion of every listed event.
import { type AuditEvent, alerts, audit, type TreeHead } from '../api.ts';
import { errorText, type PageContext } from '../app.ts';
import { append, denied, field, h, status, when } from '../dom.ts';
import { capabilitiesFor } from '../perms.ts';
import { cryptoAvailable, eventLeafHash, verifyConsistency, verifyHeadSignature, verifyInclusion } from '../verify.ts';

export async function renderAudit(main: HTMLElement, ctx: PageContext): Promise<void> {
  ctx.setSummary(await capabilitiesFor(ctx.me.roles, null, null));
  const q = ctx.query;
  const actor = h('input', { name: 'actor', value: q.get('actor') ?? '', 'data-testid': 'filter-actor' });
  const action = h('input', { name: 'action', value: q.get('action') ?? '', 'data-testid': 'filter-action' });
  const outcome = h('select', { name: 'outcome', 'data-testid': 'filter-outcome' }, ...['', 'allow', 'deny', 'success', 'failure', 'error'].map((o) => h('option', { value: o }, o || 'any')));
  outcome.value = q.get('outcome') ?? '';
  const filters = h('form', { class: 'inline' }, field('Actor', actor), field('Action', action), field('Outcome', outcome), h('button', { type: 'submit', 'data-testid': 'filter-apply' }, 'Filter'));
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    const s = new URLSearchParams();
    if (actor.value) s.set('actor', actor.value);
    if (action.value) s.set('action', action.value);
    if (outcome.value) s.set('outcome', outcome.value);
    ctx.go(`/audit?${s}`);
  });

  const head = await audit.treeHead();
  const headBox = h(
    'section',
    { class: 'card', 'data-testid': 'tree-head' },
    h('h2', {}, 'Signed tree head'),
    h('dl', {}, h('dt', {}, 'Tree size'), h('dd', { 'data-testid': 'tree-size' }, String(head.treeSize)), h('dt', {}, 'Root hash'), h('dd', { class: 'digest' }, head.rootHash), h('dt', {}, 'Signed'), h('dd', {}, when(head.timestamp)), h('dt', {}, 'Key'), h('dd', {}, head.keyId)),
  );

  append(main, h('h1', {}, 'Audit log'), headBox, filters);
  let events: AuditEvent[];
  try {
    events = (await audit.events({ limit: 100, actor: q.get('actor') ?? '', action: q.get('action') ?? '', outcome: q.get('outcome') ?? '' })).events;
  } catch (err) {
    append(main, h('p', { class: 'denied', 'data-testid': 'denied-reason' }, errorText(err), ' ', h('em', {}, 'Reading the audit log needs the auditor or project-admin role.')));
    return;
  }
  // The newest first, as people read a log.
  events.reverse();
  const results = h('div', { 'data-testid': 'verify-result' });
  const verify = h('button', { type: 'button', 'data-testid': 'verify' }, 'Verify');
  verify.addEventListener('click', () => void runVerify(head, events, results));
  append(
    headBox,
    cryptoAvailable() ? verify : denied(verify, 'Verification needs a secure context (HTTPS or localhost).', 'Open the console over HTTPS.'),
    results,
  );
  append(
    main,
    h(
      'table',
      { 'data-testid': 'events' },
      h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Time'), h('th', {}, 'Actor'), h('th', {}, 'Action'), h('th', {}, 'Resource'), h('th', {}, 'Outcome'), h('th', {}, 'Reason'))),
      h(
        'tbody',
        {},
        ...events.map((e) =>
          h(
            'tr',
            {},
            h('td', {}, String(e.seq)),
            h('td', {}, when(e.time)),
            h('td', {}, e.actor ?? '—'),
            h('td', {}, e.action),
            h('td', {}, e.resource),
            h('td', {}, h('span', { class: `badge outcome-${e.outcome}` }, e.outcome)),
            h('td', {}, e.reason ?? ''),
          ),
        ),
      ),
    ),
  );
}

async function runVerify(head: TreeHead, events: AuditEvent[], out: HTMLElement): Promise<void> {
  const lines: HTMLElement[] = [];
  const line = (ok: boolean, text: string) => lines.push(h('li', { class: ok ? 'ok' : 'bad' }, ok ? '✓ ' : '✗ ', text));
  out.replaceChildren(h('p', {}, 'Verifying…'));
  try {
    const key = await audit.publicKey();
    line(await verifyHeadSignature(head, key.publicKeyPem, key.keyId), `tree head of size ${head.treeSize} is signed by key ${key.keyId}`);
    const { treeHeads } = await audit.treeHeads();
    const prev = treeHeads.filter((t) => t.treeSize < head.treeSize).sort((a, b) => b.treeSize - a.treeSize)[0];
    if (prev) {
      const sig = await verifyHeadSignature(prev, key.publicKeyPem, key.keyId);
      const c = await audit.consistency(prev.treeSize, head.treeSize);
      const ok = sig && (await verifyConsistency(prev.treeSize, head.treeSize, prev.rootHash, head.rootHash, c.proof));
      line(ok, `the log of size ${head.treeSize} extends the earlier signed log of size ${prev.treeSize} (consistency proof)`);
    }
    const inTree = events.filter((e) => e.seq <= head.treeSize);
    let good = 0;
    for (const e of inTree) {
      const p = await audit.inclusion(e.seq, head.treeSize);
      if (await verifyInclusion(await eventLeafHash(e), p.leafIndex, p.treeSize, p.auditPath, head.rootHash)) good++;
      else line(false, `event #${e.seq} is NOT included in the signed log as shown`);
    }
    line(good === inTree.length, `${good} of ${inTree.length} listed events are included in the signed log (inclusion proofs)`);
    const all = lines.every((l) => l.classList.contains('ok'));
    out.replaceChildren(h('p', { class: all ? 'status ok' : 'status error', 'data-testid': 'verify-summary' }, all ? 'Verified.' : 'Verification FAILED.'), h('ul', {}, ...lines));
  } catch (err) {
    out.replaceChildren(h('p', { class: 'status error', 'data-testid': 'verify-summary' }, `Could not verify: ${errorText(err)}`));
  }
}

export async function renderAlerts(main: HTMLElement, ctx: PageContext): Promise<void> {
  ctx.setSummary(await capabilitiesFor(ctx.me.roles, null, null));
  const onlyOpen = ctx.query.get('open') === '1';
  append(
    main,
    h('h1', {}, 'Alerts'),
    h('p', {}, onlyOpen ? h('a', { href: '#/alerts' }, 'Show all') : h('a', { href: '#/alerts?open=1' }, 'Show unacknowledged only')),
  );
  const msg = status();
  let list: Awaited<ReturnType<typeof alerts.list>>['alerts'];
  try {
    list = (await alerts.list(onlyOpen)).alerts;
  } catch (err) {
    append(main, h('p', { class: 'denied', 'data-testid': 'denied-reason' }, errorText(err), ' ', h('em', {}, 'Alerts are for auditors and project-admins.')));
    return;
  }
  const rows = list.map((a) => {
    const ack = h('button', { type: 'button', 'data-testid': `ack-${a.id}` }, 'Acknowledge');
    ack.addEventListener('click', () => {
      alerts.acknowledge(a.id).then(
        (r) => ack.replaceWith(h('span', {}, `acknowledged by ${r.alert.acknowledgedBy ?? 'you'}`)),
        (err: unknown) => msg.set('error', errorText(err)),
      );
    });
    return h(
      'tr',
      {},
      h('td', {}, when(a.createdAt)),
      h('td', {}, h('span', { class: `badge sev-${a.severity}` }, a.severity)),
      h('td', {}, a.rule),
      h('td', {}, a.summary ?? ''),
      h('td', {}, a.acknowledgedAt ? `acknowledged ${when(a.acknowledgedAt)} by ${a.acknowledgedBy ?? '?'}` : ack),
    );
  });
  append(
    main,
    msg,
    list.length
      ? h('table', { 'data-testid': 'alerts' }, h('thead', {}, h('tr', {}, h('th', {}, 'Raised'), h('th', {}, 'Severity'), h('th', {}, 'Rule'), h('th', {}, 'Summary'), h('th', {}, ''))), h('tbody', {}, ...rows))
      : h('p', {}, 'No alerts.'),
  );
}
