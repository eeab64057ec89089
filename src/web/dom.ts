// Tiny DOM helpers. Text always goes in as text nodes (never innerHTML): names, paths and
// audit details come from other users and must not become markup.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A form field with its label. */
export function field(label: string, input: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/** A small status line for a form: set its text and kind. */
export function status(): HTMLParagraphElement & { set(kind: 'ok' | 'error' | 'info', text: string): void } {
  const p = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' }) as HTMLParagraphElement & { set(kind: 'ok' | 'error' | 'info', text: string): void };
  p.set = (kind, text) => {
    p.className = `status ${kind}`;
    p.textContent = text;
  };
  return p;
}

/** A control the caller may not use: disabled, with the reason and how to ask, never hidden. */
export function denied(control: HTMLButtonElement | HTMLInputElement | HTMLSelectElement, reason: string, hint: string): HTMLElement {
  control.disabled = true;
  control.title = reason;
  control.setAttribute('aria-describedby', '');
  const note = h('span', { class: 'denied', 'data-testid': 'denied-reason' }, reason, ' ', h('em', {}, hint));
  return h('span', { class: 'control-denied' }, control, note);
}
