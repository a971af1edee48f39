/**
 * #/calls/<CallSid>: one call. While it is live, its feed (GET /console/api/calls/:sid/feed,
 * SSE: the backlog, then events as they happen) with the operator's actions; once it has
 * ended — or when the feed answers 404 — the same page from its record
 * (GET /calls/history/:sid), with the recording when there is one.
 */
import { ApiError, getBlob, getJson, postJson, seg } from './api';
import { clear, h } from './dom';
import { dash, dateTime, duration, json, offset, showLostAudio } from './format';
import { flash, levelMeter, setMeter } from './live';
import { keepStreaming } from './stream';
import { plotTimeline, type TimelinePlot } from './timeline';
import type { CallRecord, FeedCall, Level, Role, TimelineEvent } from './types';
import type { Cleanup } from './main';

const ROLE_LABEL: Record<Role, string> = { caller: 'Caller', agent: 'Agent' };

type HeaderFields = Partial<Pick<FeedCall, 'from' | 'to' | 'agent' | 'profile' | 'state'>>;

interface ToolItem {
  li: HTMLLIElement;
  status: HTMLSpanElement;
  result: HTMLElement;
}

export function callView(root: HTMLElement, sid: string): Cleanup {
  document.title = `Call ${sid} — call console`;
  const ctl = new AbortController();
  let stopFeed: (() => void) | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let objectUrl: string | null = null;
  let plotFrame = 0;

  // ---- the page's skeleton -------------------------------------------------------------
  const field = (label: string, key: string) => {
    const dd = h('dd', { 'data-testid': `call-${key}` }, '—');
    return { dd, el: h('div', { class: 'field' }, h('dt', {}, label), dd) };
  };
  const f = { from: field('From', 'from'), to: field('To', 'to'), agent: field('Agent', 'agent'), profile: field('Profile', 'profile'), state: field('State', 'state'), duration: field('Duration', 'duration'), lost: field('Caller audio lost', 'audio-lost') };
  const mode = h('span', { class: 'badge', 'data-testid': 'call-mode' }, 'Loading');
  const status = h('p', { class: 'status', role: 'status', 'data-testid': 'call-status' });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'call-error', hidden: true });

  const callerLevel = levelMeter('Caller', 'call-level-caller');
  const agentLevel = levelMeter('Agent', 'call-level-agent');
  const levels = h('section', { class: 'levels', 'aria-label': 'Audio levels', hidden: true }, h('label', {}, 'Caller ', callerLevel), h('label', {}, 'Agent ', agentLevel));

  // Operator actions (live only).
  const sayInput = h('input', { id: 'say-text', type: 'text', maxlength: 2000, autocomplete: 'off', 'data-testid': 'say-text' });
  const sayButton = h('button', { type: 'submit', 'data-testid': 'say-submit' }, 'Say');
  const sayForm = h('form', { class: 'say' }, h('label', { for: 'say-text' }, 'Say to the caller'), h('div', { class: 'row' }, sayInput, sayButton));
  const hangupButton = h('button', { type: 'button', class: 'danger', 'data-testid': 'hangup' }, 'Hang up');
  const transferSelect = h('select', { id: 'transfer-to', 'data-testid': 'transfer-to' });
  const transferButton = h('button', { type: 'button', 'data-testid': 'transfer-submit' }, 'Transfer');
  const transferForm = h('div', { class: 'transfer', hidden: true }, h('label', { for: 'transfer-to' }, 'Transfer to'), h('div', { class: 'row' }, transferSelect, transferButton));
  const actionStatus = h('p', { class: 'status', role: 'status', 'data-testid': 'action-status' });
  const actionError = h('p', { class: 'error', role: 'alert', 'data-testid': 'action-error', hidden: true });
  const actions = h('section', { class: 'actions card', 'aria-labelledby': 'actions-title', hidden: true, 'data-testid': 'call-actions' }, h('h3', { id: 'actions-title' }, 'Actions'), sayForm, h('div', { class: 'row' }, hangupButton), transferForm, actionStatus, actionError);

  const audioSlot = h('section', { class: 'recording', 'aria-label': 'Recording', hidden: true });
  const plotWrap = h('div', { class: 'timeline-wrap', tabindex: '0', 'aria-label': 'Timeline (scrolls sideways)' });
  const transcript = h('ol', { class: 'transcript', 'aria-live': 'polite', 'aria-relevant': 'additions', 'data-testid': 'transcript' });
  const tools = h('ul', { class: 'tools', 'data-testid': 'tools' });
  const bargeIns = h('ul', { class: 'bargeins', 'data-testid': 'bargeins' });
  const opActions = h('ul', { class: 'op-actions', 'data-testid': 'operator-actions' });
  const endReason = h('p', { class: 'end-reason', 'data-testid': 'end-reason', hidden: true });
  const emptyNote = (ul: HTMLElement, text: string) => h('p', { class: 'empty-note', 'data-empty-for': ul.className }, text);
  const notes = { transcript: emptyNote(transcript, 'No transcript yet.'), tools: emptyNote(tools, 'No tool calls.'), bargeIns: emptyNote(bargeIns, 'No barge-ins.'), opActions: emptyNote(opActions, 'No operator actions.') };

  root.append(
    h('div', { class: 'call-head' }, h('h2', {}, 'Call ', h('code', { class: 'sid' }, sid)), mode),
    h('dl', { class: 'fields' }, ...Object.values(f).map((x) => x.el)),
    status,
    error,
    endReason,
    levels,
    actions,
    audioSlot,
    h('section', { 'aria-labelledby': 'tl-title' }, h('h3', { id: 'tl-title' }, 'Timeline'), plotWrap),
    h('div', { class: 'columns' },
      h('section', { 'aria-labelledby': 'tr-title' }, h('h3', { id: 'tr-title' }, 'Transcript'), notes.transcript, transcript),
      h('div', {},
        h('section', { 'aria-labelledby': 'tools-title' }, h('h3', { id: 'tools-title' }, 'Tool calls'), notes.tools, tools),
        h('section', { 'aria-labelledby': 'bi-title' }, h('h3', { id: 'bi-title' }, 'Barge-ins'), notes.bargeIns, bargeIns),
        h('section', { 'aria-labelledby': 'op-title' }, h('h3', { id: 'op-title' }, 'Operator actions'), notes.opActions, opActions),
      ),
    ),
  );

  // ---- the content, built from timeline events -----------------------------------------
  let events: TimelineEvent[] = [];
  let toolItems = new Map<string, ToolItem>();
  let lines: { t: number; li: HTMLLIElement }[] = [];
  let plot: TimelinePlot | null = null;
  let durationMs: number | null = null;
  let live = false;
  let liveBase: { ms: number; at: number } | null = null;

  const showError = (el: HTMLElement, msg: string | null) => {
    el.textContent = msg ?? '';
    el.hidden = !msg;
  };
  const updateNotes = () => {
    notes.transcript.hidden = transcript.childElementCount > 0;
    notes.tools.hidden = tools.childElementCount > 0;
    notes.bargeIns.hidden = bargeIns.childElementCount > 0;
    notes.opActions.hidden = opActions.childElementCount > 0;
  };
  const resetContent = () => {
    events = [];
    toolItems = new Map();
    lines = [];
    for (const el of [transcript, tools, bargeIns, opActions]) clear(el);
    showError(endReason, null);
    updateNotes();
    schedulePlot();
  };
  const schedulePlot = () => {
    if (plotFrame) return;
    plotFrame = requestAnimationFrame(() => {
      plotFrame = 0;
      const keepScroll = plotWrap.scrollLeft;
      plot = plotTimeline(events, durationMs);
      clear(plotWrap);
      plotWrap.append(plot.svg);
      plotWrap.scrollLeft = live ? plotWrap.scrollWidth : keepScroll;
    });
  };
  const setHeader = (c: HeaderFields) => {
    f.from.dd.textContent = dash(c.from);
    f.to.dd.textContent = dash(c.to);
    f.agent.dd.textContent = dash(c.agent);
    f.profile.dd.textContent = dash(c.profile);
    f.state.dd.textContent = dash(c.state);
  };
  const showDuration = () => {
    const ms = live && liveBase ? liveBase.ms + (Date.now() - liveBase.at) : durationMs;
    f.duration.dd.textContent = duration(ms);
  };

  const addTranscript = (role: Role, text: string, t: number | null) => {
    const li = h(
      'li',
      { 'data-testid': 'transcript-line', 'data-role': role, class: role, 'data-t': t ?? undefined },
      t !== null ? h('span', { class: 'time' }, offset(t)) : null,
      h('strong', { class: 'role' }, `${ROLE_LABEL[role] ?? role}: `),
      h('span', { class: 'text' }, text),
    );
    transcript.append(li);
    if (t !== null) lines.push({ t, li });
  };

  const toolItem = (callId: string, name: string, t: number): ToolItem => {
    let item = toolItems.get(callId);
    if (item) return item;
    const status = h('span', { class: 'tool-status pending' }, 'running');
    const result = h('div', { class: 'tool-result' });
    const li = h('li', { 'data-testid': 'tool-call', 'data-call-id': callId, class: 'card' }, h('div', { class: 'tool-head' }, h('strong', { class: 'tool-name' }, name), ' ', h('span', { class: 'time' }, `at ${offset(t)}`), ' ', status), result);
    tools.append(li);
    item = { li, status, result };
    toolItems.set(callId, item);
    return item;
  };

  const addEvent = (e: TimelineEvent, o: { skipActions?: boolean } = {}) => {
    if (!e || typeof e !== 'object' || typeof e.t !== 'number') return;
    events.push(e);
    switch (e.type) {
      case 'transcript':
        addTranscript(e.role, e.text, e.t);
        break;
      case 'tool': {
        const item = toolItem(e.callId, e.name, e.t);
        item.li.insertBefore(h('div', { class: 'tool-args' }, h('span', { class: 'label' }, 'Arguments'), h('pre', { 'data-testid': 'tool-args' }, json(e.arguments))), item.result);
        break;
      }
      case 'toolResult': {
        const item = toolItem(e.callId, e.name, e.t - (e.durationMs ?? 0));
        item.status.textContent = `${e.ok ? 'ok' : 'failed'} · ${Math.round(e.durationMs)} ms`;
        item.status.className = `tool-status ${e.ok ? 'ok' : 'failed'}`;
        clear(item.result);
        if (e.ok) item.result.append(h('span', { class: 'label' }, 'Result'), h('pre', { 'data-testid': 'tool-output' }, json(e.output)));
        else item.result.append(h('p', { class: 'error', 'data-testid': 'tool-error' }, `Error: ${e.error ?? 'unknown'}${e.code ? ` (${e.code})` : ''}`));
        break;
      }
      case 'bargeIn':
        bargeIns.append(h('li', { 'data-testid': 'bargein' }, h('span', { class: 'time' }, offset(e.t)), ` the caller spoke over the agent after ${Math.round(e.heardMs)} ms of its reply was heard`, e.source ? ` (${e.source})` : ''));
        if (live) flash(bargeIns);
        break;
      case 'action':
        if (!o.skipActions) opActions.append(h('li', { 'data-testid': 'operator-action' }, h('span', { class: 'time' }, offset(e.t)), ` ${e.action}`, e.detail ? `: ${e.detail}` : ''));
        break;
      case 'end':
        showError(endReason, `Ended: ${e.reason}`);
        break;
      default:
        break;
    }
    updateNotes();
    schedulePlot();
  };

  // ---- the record (an ended call) ------------------------------------------------------
  const enterRecordMode = () => {
    live = false;
    stopFeed?.();
    stopFeed = null;
    levels.hidden = true;
    actions.hidden = true;
    transcript.setAttribute('aria-live', 'off');
  };

  const renderRecord = (rec: CallRecord) => {
    enterRecordMode();
    mode.textContent = 'Record';
    setHeader({ ...rec, state: 'closed' });
    showLostAudio(f.lost.dd, rec.callerAudioDroppedMs);
    durationMs = rec.durationMs ?? (rec.endedAt && rec.startedAt ? Date.parse(rec.endedAt) - Date.parse(rec.startedAt) : null);
    showDuration();
    status.textContent = `Started ${dateTime(rec.startedAt)}${rec.endedAt ? `, ended ${dateTime(rec.endedAt)}` : ''}.`;
    resetContent();
    const timeline = Array.isArray(rec.timeline) ? [...rec.timeline].sort((a, b) => a.t - b.t) : [];
    const recordActions = Array.isArray(rec.actions) ? rec.actions : [];
    for (const e of timeline) addEvent(e, { skipActions: recordActions.length > 0 });
    if (!timeline.some((e) => e.type === 'transcript')) for (const tr of rec.transcripts ?? []) addTranscript(tr.role, tr.text, null);
    for (const a of recordActions) opActions.append(h('li', { 'data-testid': 'operator-action' }, h('span', { class: 'time' }, dateTime(a.at)), ` ${a.action}`, a.detail ? `: ${a.detail}` : ''));
    showError(endReason, `Ended: ${rec.endReason ?? 'unknown'}`);
    updateNotes();
    schedulePlot();
    // Once: a record still being written (in-progress) may come again, its WAV not finalised yet.
    if (rec.recordingPath && rec.recordState !== 'in-progress' && !recordingRequested) {
      recordingRequested = true;
      void loadRecording();
    }
  };

  const loadRecording = async () => {
    audioSlot.hidden = false;
    clear(audioSlot);
    const note = h('p', { class: 'status' }, 'Loading the recording…');
    audioSlot.append(h('h3', {}, 'Recording'), note);
    let blob: Blob;
    try {
      blob = await getBlob(`/calls/${seg(sid)}/recording`, ctl.signal);
    } catch (e) {
      if (ctl.signal.aborted) return;
      note.textContent = `The recording cannot be loaded: ${e instanceof ApiError ? e.detail : 'the bridge cannot be reached'}.`;
      note.className = 'error';
      return;
    }
    if (ctl.signal.aborted) return;
    objectUrl = URL.createObjectURL(blob);
    const audio = h('audio', { controls: true, preload: 'metadata', src: objectUrl, 'data-testid': 'call-audio', 'aria-label': 'Call recording (caller left, agent right)' });
    note.replaceWith(audio);
    let current: HTMLLIElement | null = null;
    const follow = () => {
      const ms = audio.currentTime * 1000;
      plot?.setPlayhead(ms);
      let hit: HTMLLIElement | null = null;
      for (let i = 0; i < lines.length; i++) {
        const l = lines[i]!;
        const next = lines[i + 1];
        if (l.t <= ms && (!next || ms < next.t)) {
          hit = l.li;
          break;
        }
      }
      if (hit === current) return;
      current?.classList.remove('current');
      current?.removeAttribute('aria-current');
      current = hit;
      if (hit) {
        hit.classList.add('current');
        hit.setAttribute('aria-current', 'true');
        hit.scrollIntoView({ block: 'nearest' });
      }
    };
    lines.sort((a, b) => a.t - b.t);
    audio.addEventListener('timeupdate', follow);
    audio.addEventListener('seeked', follow);
  };

  let recordTries = 0;
  let recordingRequested = false;
  const loadRecord = async (afterEnd: boolean) => {
    let rec: CallRecord;
    try {
      rec = await getJson<CallRecord>(`/console/api/calls/${seg(sid)}`, { signal: ctl.signal });
    } catch (e) {
      if (ctl.signal.aborted) return;
      const err = e instanceof ApiError ? e : null;
      // Just ended: its record may still be on its way to the store.
      if (afterEnd && err?.status === 404 && recordTries++ < 5) {
        status.textContent = 'The call ended; waiting for its record…';
        setTimeout(() => void loadRecord(true), 1000);
        return;
      }
      if (afterEnd) {
        status.textContent = 'The call ended.';
        showError(error, `Its record cannot be shown: ${err ? err.detail : 'the bridge cannot be reached'}.`);
      } else {
        mode.textContent = 'Not found';
        status.textContent = '';
        showError(error, err?.status === 404 ? `No call ${sid}: it is not live, and there is no record of it.` : `The call cannot be loaded: ${err ? err.detail : 'the bridge cannot be reached'}.`);
      }
      schedulePlot();
      return;
    }
    if (ctl.signal.aborted) return;
    showError(error, null);
    renderRecord(rec);
    // Just ended: the store may still hold the row written while the call ran; the final one follows.
    if (afterEnd && rec.recordState === 'in-progress' && recordTries++ < 10) {
      status.textContent = 'The call ended; waiting for its final record…';
      setTimeout(() => void loadRecord(true), 1000);
    }
  };

  // ---- live ----------------------------------------------------------------------------
  const onCall = (c: FeedCall) => {
    live = c.state !== 'closed';
    mode.textContent = live ? 'Live' : 'Ended';
    setHeader(c);
    showLostAudio(f.lost.dd, c.callerAudioDroppedMs);
    liveBase = { ms: c.durationMs ?? 0, at: Date.now() };
    durationMs = c.durationMs ?? null;
    showDuration();
    levels.hidden = !live;
    actions.hidden = !live;
    clear(transferSelect);
    const targets = Array.isArray(c.transferTo) ? c.transferTo : [];
    for (const to of targets) transferSelect.append(h('option', { value: to }, to));
    transferForm.hidden = targets.length === 0;
  };

  const onEnded = (d: { endReason?: string | null; durationMs?: number; callerAudioDroppedMs?: number }) => {
    live = false;
    if (typeof d.callerAudioDroppedMs === 'number') showLostAudio(f.lost.dd, d.callerAudioDroppedMs);
    mode.textContent = 'Ended';
    f.state.dd.textContent = 'closed';
    durationMs = typeof d.durationMs === 'number' ? d.durationMs : durationMs;
    showDuration();
    showError(endReason, `Ended: ${d.endReason ?? 'unknown'}`);
    enterRecordMode();
    void loadRecord(true);
  };

  const act = async (what: string, path: string, body: unknown, button: HTMLButtonElement) => {
    button.disabled = true;
    showError(actionError, null);
    actionStatus.textContent = `${what}…`;
    try {
      const r = await postJson<{ queuedMs?: number }>(path, body, ctl.signal);
      actionStatus.textContent = `${what}: done${typeof r.queuedMs === 'number' ? ` (queued ${Math.round(r.queuedMs)} ms)` : ''}.`;
      return true;
    } catch (e) {
      if (ctl.signal.aborted) return false;
      actionStatus.textContent = '';
      showError(actionError, `${what} failed: ${e instanceof ApiError ? e.detail : 'the bridge cannot be reached'}`);
      return false;
    } finally {
      button.disabled = false;
    }
  };
  sayForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = sayInput.value.trim();
    if (!text) {
      showError(actionError, 'Type what to say first.');
      sayInput.focus();
      return;
    }
    void act('Say', `/calls/${seg(sid)}/say`, { text }, sayButton).then((ok) => {
      if (ok) sayInput.value = '';
    });
  });
  hangupButton.addEventListener('click', () => {
    if (!window.confirm(`Hang up call ${sid}?`)) return;
    void act('Hang up', `/calls/${seg(sid)}/hangup`, {}, hangupButton);
  });
  transferButton.addEventListener('click', () => {
    const to = transferSelect.value;
    if (!to) return;
    if (!window.confirm(`Transfer call ${sid} to ${to}?`)) return;
    void act('Transfer', `/calls/${seg(sid)}/transfer`, { to }, transferButton);
  });

  let ended = false;
  resetContent();
  stopFeed = keepStreaming({
    path: `/console/api/calls/${seg(sid)}/feed`,
    onOpen: () => {
      showError(error, null);
      resetContent(); // each connection replays the backlog
    },
    onStatus: (msg) => {
      status.textContent = msg ?? 'Connected: updates as they happen.';
    },
    onEvent: (name, data) => {
      const d = (data ?? {}) as Record<string, unknown>;
      if (name === 'call') onCall(d.call as FeedCall);
      else if (name === 'timeline') addEvent(d as unknown as TimelineEvent);
      else if (name === 'levels') {
        const l = d as unknown as Level;
        setMeter(callerLevel, 'Caller', l.caller);
        setMeter(agentLevel, 'Agent', l.agent);
      } else if (name === 'audio') {
        if (typeof d.callerAudioDroppedMs === 'number') showLostAudio(f.lost.dd, d.callerAudioDroppedMs);
      } else if (name === 'ended') {
        ended = true;
        onEnded(d as { endReason?: string | null; durationMs?: number; callerAudioDroppedMs?: number });
      }
    },
    giveUp: (err) => {
      if (err instanceof ApiError && err.status === 404) {
        status.textContent = 'Not live: loading its record…';
        void loadRecord(false);
        return true;
      }
      return false;
    },
    onEnd: () => ended,
  });
  timer = setInterval(showDuration, 1000);

  return () => {
    ctl.abort();
    stopFeed?.();
    if (timer !== undefined) clearInterval(timer);
    if (plotFrame) cancelAnimationFrame(plotFrame);
    if (objectUrl) URL.revokeObjectURL(objectUrl);
  };
}
