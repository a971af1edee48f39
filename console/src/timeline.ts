/**
 * The call's timeline as an inline SVG: two lanes (caller, agent) from `speech` events,
 * a red line per barge-in, a marker per tool call, the reply latency of each turn, and a
 * playhead while the recording plays. 20 px per second, scrolled sideways when longer
 * than the screen (text stays legible at any width).
 */
import { s } from './dom';
import { offset } from './format';
import type { TimelineEvent } from './types';

const LEFT = 64;
const PX_PER_S = 20;
const MAX_WIDTH = 24_000;
const HEIGHT = 150;
const LANES = { caller: 24, agent: 68 } as const;
const LANE_H = 28;

export interface TimelinePlot {
  svg: SVGSVGElement;
  setPlayhead(ms: number | null): void;
}

export function plotTimeline(events: TimelineEvent[], durationMs: number | null): TimelinePlot {
  let end = durationMs ?? 0;
  for (const e of events) end = Math.max(end, e.t, e.type === 'speech' ? e.endT : 0, e.type === 'toolResult' ? e.t : 0);
  end = Math.max(end, 10_000);
  const pxPerMs = Math.min(PX_PER_S / 1000, (MAX_WIDTH - LEFT - 20) / end);
  const width = Math.ceil(LEFT + end * pxPerMs + 20);
  const x = (t: number) => LEFT + Math.max(0, t) * pxPerMs;

  const counts = { caller: 0, agent: 0, bargeIn: 0, tool: 0 };
  const svg = s('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', class: 'timeline', 'data-testid': 'timeline' });
  const title = s('title');
  svg.append(title);

  for (const [role, y] of Object.entries(LANES)) {
    svg.append(
      s('rect', { x: LEFT, y, width: width - LEFT - 10, height: LANE_H, class: 'lane' }),
      s('text', { x: 6, y: y + LANE_H / 2 + 4, class: 'lane-label' }, role === 'caller' ? 'Caller' : 'Agent'),
    );
  }
  // Axis: a tick every 5 s (10 s past two minutes, 30 s past ten).
  const step = end > 600_000 ? 30_000 : end > 120_000 ? 10_000 : 5_000;
  for (let t = 0; t <= end; t += step) {
    svg.append(s('line', { x1: x(t), x2: x(t), y1: 104, y2: 110, class: 'tick' }), s('text', { x: x(t), y: 124, class: 'tick-label', 'text-anchor': 'middle' }, offset(t).replace(/\.\d$/, '')));
  }
  for (const e of events) {
    if (e.type === 'speech') {
      counts[e.role] += 1;
      const r = s('rect', { x: x(e.t), y: LANES[e.role] + 3, width: Math.max(1, (e.endT - e.t) * pxPerMs), height: LANE_H - 6, class: `speech ${e.role}`, 'data-testid': 'timeline-speech' });
      r.append(s('title', {}, `${e.role} ${offset(e.t)}–${offset(e.endT)}`));
      svg.append(r);
    } else if (e.type === 'turn') {
      const at = e.t + e.latencyMs;
      svg.append(
        s('line', { x1: x(e.t), x2: x(at), y1: 100, y2: 100, class: 'latency' }),
        s('text', { x: x(at) + 2, y: 98, class: 'latency-label', 'data-testid': 'timeline-latency' }, `${Math.round(e.latencyMs)} ms`),
      );
    } else if (e.type === 'bargeIn') {
      counts.bargeIn += 1;
      const l = s('line', { x1: x(e.t), x2: x(e.t), y1: 14, y2: 104, class: 'barge-in', 'data-testid': 'timeline-bargein' });
      l.append(s('title', {}, `barge-in at ${offset(e.t)}, ${e.heardMs} ms of the reply heard`));
      svg.append(l);
    } else if (e.type === 'tool') {
      counts.tool += 1;
      const cx = x(e.t);
      const p = s('path', { d: `M${cx} 4 l5 7 l-5 7 l-5 -7 z`, class: 'tool-marker', 'data-testid': 'timeline-tool' });
      p.append(s('title', {}, `tool ${e.name} at ${offset(e.t)}`));
      svg.append(p);
    }
  }
  const playhead = s('line', { x1: LEFT, x2: LEFT, y1: 0, y2: 110, class: 'playhead', visibility: 'hidden' });
  svg.append(playhead);
  const summary = `Timeline of ${offset(end)}: ${counts.caller} caller and ${counts.agent} agent speech segments, ${counts.bargeIn} barge-ins, ${counts.tool} tool calls.`;
  title.textContent = summary;
  svg.setAttribute('aria-label', summary);
  return {
    svg,
    setPlayhead(ms) {
      if (ms === null) {
        playhead.setAttribute('visibility', 'hidden');
        return;
      }
      playhead.setAttribute('x1', String(x(ms)));
      playhead.setAttribute('x2', String(x(ms)));
      playhead.setAttribute('visibility', 'visible');
    },
  };
}
