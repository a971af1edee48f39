/** #/live: the calls in flight on every instance (GET /console/api/live, SSE), updated in place. */
import { h } from './dom';
import { dash, dbLabel, duration, meterValue, showLostAudio } from './format';
import { keepStreaming } from './stream';
import type { Level, LiveCall } from './types';
import type { Cleanup } from './main';

interface Row {
  tr: HTMLTableRowElement;
  link: HTMLAnchorElement;
  cells: Record<'to' | 'agent' | 'profile' | 'duration' | 'state' | 'instance' | 'lost', HTMLTableCellElement>;
  caller: HTMLMeterElement;
  agent: HTMLMeterElement;
  bargeIns: HTMLSpanElement;
  call: LiveCall;
  bargeInCount: number;
}

export function levelMeter(who: 'Caller' | 'Agent', testid: string): HTMLMeterElement {
  return h('meter', { min: 0, max: 90, low: 40, high: 80, optimum: 60, value: 0, 'aria-label': `${who} level: no audio`, 'data-testid': testid, class: 'level' });
}

export function setMeter(m: HTMLMeterElement, who: 'Caller' | 'Agent', db: number | null | undefined): void {
  m.value = meterValue(db);
  m.setAttribute('aria-label', `${who} level: ${dbLabel(db)}`);
  m.title = dbLabel(db);
}

export function flash(el: Element): void {
  el.classList.remove('flash');
  // Restart the animation: a reflow between removing and adding the class.
  void (el as HTMLElement).offsetWidth;
  el.classList.add('flash');
}

export function liveView(root: HTMLElement): Cleanup {
  const status = h('p', { class: 'status', role: 'status', 'data-testid': 'live-status' }, 'Connecting…');
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'live-error', hidden: true });
  const empty = h('p', { class: 'empty', 'data-testid': 'live-empty' }, 'No live calls');
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'calls', 'data-testid': 'live-table', hidden: true },
    h('caption', { class: 'visually-hidden' }, 'Live calls'),
    h('thead', {}, h('tr', {}, ...['From', 'To', 'Agent', 'Profile', 'Duration', 'State', 'Instance', 'Caller level', 'Agent level', 'Barge-ins', 'Audio lost'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  root.append(h('h2', {}, 'Live calls'), status, error, empty, h('div', { class: 'table-wrap' }, table));

  const rows = new Map<string, Row>();
  /** Server clock minus ours (ms), from the last snapshot's `at`: durations tick on the server's time. */
  let skew = 0;

  const tick = () => {
    const now = Date.now() + skew;
    for (const r of rows.values()) {
      const started = Date.parse(r.call.startedAt);
      const ms = r.call.state === 'closed' || Number.isNaN(started) ? r.call.durationMs : Math.max(r.call.durationMs, now - started);
      r.cells.duration.textContent = duration(ms);
    }
  };

  const makeRow = (c: LiveCall): Row => {
    const link = h('a', { href: `#/calls/${encodeURIComponent(c.callSid)}`, 'data-testid': 'live-link' });
    const td = (k: string) => h('td', { 'data-label': k });
    const cells = { to: td('To'), agent: td('Agent'), profile: td('Profile'), duration: td('Duration'), state: td('State'), instance: td('Instance'), lost: h('td', { 'data-label': 'Audio lost', 'data-testid': 'live-audio-lost' }) };
    const caller = levelMeter('Caller', 'live-level-caller');
    const agent = levelMeter('Agent', 'live-level-agent');
    const bargeIns = h('span', { class: 'barge', 'data-testid': 'live-bargeins' }, '0');
    const tr = h(
      'tr',
      { 'data-testid': 'live-row', 'data-call-sid': c.callSid },
      h('td', { 'data-label': 'From' }, link),
      cells.to,
      cells.agent,
      cells.profile,
      cells.duration,
      cells.state,
      cells.instance,
      h('td', { 'data-label': 'Caller level' }, caller),
      h('td', { 'data-label': 'Agent level' }, agent),
      h('td', { 'data-label': 'Barge-ins' }, bargeIns),
      cells.lost,
    );
    return { tr, link, cells, caller, agent, bargeIns, call: c, bargeInCount: 0 };
  };

  const onCalls = (d: { at?: string; calls?: LiveCall[] }) => {
    const calls = Array.isArray(d.calls) ? d.calls : [];
    if (d.at) {
      const at = Date.parse(d.at);
      if (!Number.isNaN(at)) skew = at - Date.now();
    }
    const seen = new Set<string>();
    for (const c of calls) {
      seen.add(c.callSid);
      let r = rows.get(c.callSid);
      if (!r) {
        r = makeRow(c);
        rows.set(c.callSid, r);
      }
      r.call = c;
      r.link.textContent = dash(c.from);
      r.link.setAttribute('aria-label', `Call from ${dash(c.from)} (${c.callSid})`);
      r.cells.to.textContent = dash(c.to);
      r.cells.agent.textContent = dash(c.agent);
      r.cells.profile.textContent = dash(c.profile);
      r.cells.state.textContent = c.state;
      r.tr.dataset.state = c.state;
      r.cells.instance.textContent = `${dash(c.instance)}${c.worker !== null && c.worker !== undefined ? ` #${c.worker}` : ''}${c.local ? '' : ' (remote)'}`;
      showLostAudio(r.cells.lost, c.callerAudioDroppedMs);
      if (c.bargeIns !== r.bargeInCount) {
        if (c.bargeIns > r.bargeInCount && r.bargeInCount > 0) flash(r.bargeIns);
        r.bargeInCount = c.bargeIns;
        r.bargeIns.textContent = String(c.bargeIns);
      }
      tbody.append(r.tr); // in the snapshot's order (append moves an existing row)
    }
    for (const [sid, r] of rows) {
      if (!seen.has(sid)) {
        r.tr.remove();
        rows.delete(sid);
      }
    }
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
    tick();
  };

  const onLevels = (d: { levels?: Record<string, Level> }) => {
    for (const [sid, l] of Object.entries(d.levels ?? {})) {
      const r = rows.get(sid);
      if (!r) continue;
      setMeter(r.caller, 'Caller', l.caller);
      setMeter(r.agent, 'Agent', l.agent);
    }
  };

  const onBargeIn = (d: { callSid?: string }) => {
    const r = d.callSid ? rows.get(d.callSid) : undefined;
    if (!r) return;
    r.bargeInCount += 1;
    r.bargeIns.textContent = String(r.bargeInCount);
    flash(r.bargeIns);
  };

  const timer = setInterval(tick, 1000);
  const stop = keepStreaming({
    path: '/console/api/live',
    onStatus: (msg) => {
      status.textContent = msg ? 'Disconnected' : 'Connected: updates as they happen.';
      error.textContent = msg ?? '';
      error.hidden = !msg;
    },
    onEvent: (name, data) => {
      const d = (data ?? {}) as Record<string, unknown>;
      if (name === 'calls') onCalls(d);
      else if (name === 'levels') onLevels(d);
      else if (name === 'bargeIn') onBargeIn(d);
    },
  });
  return () => {
    clearInterval(timer);
    stop();
  };
}
