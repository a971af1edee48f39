/**
 * #/history: ended calls from the record store (GET /calls/history), 20 a page. The search
 * terms stay in this module's memory — never in the URL (a number is caller data) — so
 * coming back to #/history shows the same search and page.
 */
import { ApiError, postJson } from './api';
import { clear, h } from './dom';
import { dash, dateTime, duration } from './format';
import type { HistoryPage } from './types';
import type { Cleanup } from './main';

const PAGE_SIZE = 20;
type Terms = { q: string; agent: string; profile: string; endReason: string };
const remembered: { terms: Terms; page: number } = { terms: { q: '', agent: '', profile: '', endReason: '' }, page: 1 };

export function historyView(root: HTMLElement): Cleanup {
  let ctl = new AbortController();
  // Inputs without `name`: a native submit (no script) could put nothing in the URL.
  const input = (key: keyof Terms, label: string, hint?: string) => {
    const el = h('input', { id: `h-${key}`, type: 'search', autocomplete: 'off', spellcheck: 'false', 'data-testid': `history-${key}` });
    el.value = remembered.terms[key];
    return { key, el, wrap: h('div', { class: 'field' }, h('label', { for: `h-${key}` }, label), el, hint ? h('span', { class: 'hint' }, hint) : null) };
  };
  const fields = [input('q', 'Number contains', 'digits of From or To'), input('agent', 'Agent'), input('profile', 'Profile'), input('endReason', 'End reason')];
  const search = h('button', { type: 'submit', class: 'primary', 'data-testid': 'history-search' }, 'Search');
  const reset = h('button', { type: 'button', 'data-testid': 'history-reset' }, 'Clear');
  const form = h('form', { class: 'search card', role: 'search', 'aria-label': 'Search calls' }, ...fields.map((x) => x.wrap), h('div', { class: 'row buttons' }, search, reset));
  const status = h('p', { class: 'status', role: 'status', 'data-testid': 'history-status' });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'history-error', hidden: true });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'calls', 'data-testid': 'history-table', hidden: true },
    h('caption', { class: 'visually-hidden' }, 'Recorded calls'),
    h('thead', {}, h('tr', {}, ...['Started', 'From', 'To', 'Agent', 'Profile', 'Duration', 'End reason', 'Barge-ins'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  const prev = h('button', { type: 'button', 'data-testid': 'history-prev' }, '← Newer');
  const next = h('button', { type: 'button', 'data-testid': 'history-next' }, 'Older →');
  const pageLabel = h('span', { class: 'page', 'data-testid': 'history-page' });
  root.append(h('h2', {}, 'History'), form, status, error, h('div', { class: 'table-wrap' }, table), h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageLabel, next));

  const load = async () => {
    ctl.abort();
    ctl = new AbortController();
    const signal = ctl.signal;
    // The search goes in a POST body: a number fragment never appears in a URL, not even the API's.
    const search: Record<string, string | number> = { limit: PAGE_SIZE, page: remembered.page };
    for (const [k, v] of Object.entries(remembered.terms)) if (v.trim()) search[k] = v.trim();
    status.textContent = 'Loading…';
    prev.disabled = true;
    next.disabled = true;
    let r: HistoryPage;
    try {
      r = await postJson<HistoryPage>('/console/api/history', search, signal);
    } catch (e) {
      if (signal.aborted) return;
      status.textContent = '';
      error.textContent = `The history cannot be loaded: ${e instanceof ApiError ? e.detail : 'the bridge cannot be reached'}`;
      error.hidden = false;
      prev.disabled = remembered.page <= 1;
      return;
    }
    if (signal.aborted) return;
    error.hidden = true;
    clear(tbody);
    const calls = Array.isArray(r.calls) ? r.calls : [];
    for (const c of calls) {
      tbody.append(
        h(
          'tr',
          { 'data-testid': 'history-row', 'data-call-sid': c.callSid },
          h('td', { 'data-label': 'Started' }, h('a', { href: `#/calls/${encodeURIComponent(c.callSid)}`, 'aria-label': `Call of ${dateTime(c.startedAt)} from ${dash(c.from)}` }, dateTime(c.startedAt))),
          h('td', { 'data-label': 'From' }, dash(c.from)),
          h('td', { 'data-label': 'To' }, dash(c.to)),
          h('td', { 'data-label': 'Agent' }, dash(c.agent)),
          h('td', { 'data-label': 'Profile' }, dash(c.profile)),
          h('td', { 'data-label': 'Duration' }, duration(c.durationMs)),
          h('td', { 'data-label': 'End reason' }, dash(c.endReason)),
          h('td', { 'data-label': 'Barge-ins' }, dash(c.bargeIns)),
        ),
      );
    }
    table.hidden = calls.length === 0;
    status.textContent = calls.length === 0 ? (remembered.page > 1 ? 'No more calls.' : 'No calls match.') : `${calls.length} call${calls.length === 1 ? '' : 's'}.`;
    pageLabel.textContent = `Page ${remembered.page}`;
    prev.disabled = remembered.page <= 1;
    next.disabled = !r.more;
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    for (const x of fields) remembered.terms[x.key] = x.el.value;
    remembered.page = 1;
    void load();
  });
  reset.addEventListener('click', () => {
    for (const x of fields) {
      x.el.value = '';
      remembered.terms[x.key] = '';
    }
    remembered.page = 1;
    void load();
  });
  prev.addEventListener('click', () => {
    remembered.page = Math.max(1, remembered.page - 1);
    void load();
  });
  next.addEventListener('click', () => {
    remembered.page += 1;
    void load();
  });
  void load();
  return () => ctl.abort();
}
