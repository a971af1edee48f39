/**
 * A dependency-free SVG of the capacity run: p99 added delay and bridge CPU per
 * call-second against concurrent calls, one line per mode.
 */
export interface PlotSeries {
  mode: string;
  points: { calls: number; delayP99Ms: number | null; cpuMsPerCallS: number | null; held: boolean }[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(series: PlotSeries[], key: 'delayP99Ms' | 'cpuMsPerCallS', x0: number, title: string, yLabel: string, limit: number | undefined, yCap = Infinity): string {
  const W = 460;
  const H = 300;
  const L = 60;
  const T = 40;
  const PW = W - L - 20;
  const PH = H - T - 50;
  const xs = series.flatMap((s) => s.points.map((p) => p.calls));
  const ys = series.flatMap((s) => s.points.map((p) => p[key] ?? 0));
  const xMax = niceMax(Math.max(1, ...xs));
  const yMax = Math.min(yCap, niceMax(Math.max(limit ?? 0, ...ys) * 1.05));
  const px = (x: number) => x0 + L + (x / xMax) * PW;
  const py = (y: number) => T + PH - (Math.min(y, yMax) / yMax) * PH;
  let s = `<text x="${x0 + W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`;
  s += `<rect x="${x0 + L}" y="${T}" width="${PW}" height="${PH}" fill="none" stroke="#888"/>`;
  for (let i = 0; i <= 5; i++) {
    const y = (yMax * i) / 5;
    const x = (xMax * i) / 5;
    s += `<line x1="${x0 + L}" x2="${x0 + L + PW}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/>`;
    s += `<text x="${x0 + L - 6}" y="${py(y) + 4}" text-anchor="end" font-size="11">${+y.toFixed(2)}</text>`;
    s += `<text x="${px(x)}" y="${T + PH + 16}" text-anchor="middle" font-size="11">${Math.round(x)}</text>`;
  }
  s += `<text x="${x0 + L + PW / 2}" y="${T + PH + 36}" text-anchor="middle" font-size="12">concurrent calls</text>`;
  s += `<text x="${x0 + 14}" y="${T + PH / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 + 14} ${T + PH / 2})">${yLabel}</text>`;
  if (limit !== undefined) s += `<line x1="${x0 + L}" x2="${x0 + L + PW}" y1="${py(limit)}" y2="${py(limit)}" stroke="#999" stroke-dasharray="5 4"/><text x="${x0 + L + PW - 4}" y="${py(limit) - 4}" text-anchor="end" font-size="10" fill="#666">target ${limit}</text>`;
  series.forEach((ser, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = ser.points.filter((p) => p[key] !== null);
    if (pts.length === 0) return;
    s += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${px(p.calls).toFixed(1)},${py(p[key]!).toFixed(1)}`).join(' ')}"/>`;
    for (const p of pts) s += `<circle cx="${px(p.calls).toFixed(1)}" cy="${py(p[key]!).toFixed(1)}" r="3.5" fill="${p.held ? c : '#fff'}" stroke="${c}" stroke-width="1.5"/>`;
  });
  return s;
}

export function renderSvg(series: PlotSeries[], subtitle: string): string {
  const legend = series
    .map((s, i) => `<g transform="translate(${70 + i * 175},352)"><rect width="14" height="4" y="-4" fill="${COLORS[i % COLORS.length]}"/><text x="20" y="0" font-size="12">${s.mode}</text></g>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="940" height="390" font-family="sans-serif">
<rect width="940" height="390" fill="#fff"/>
${panel(series, 'delayP99Ms', 0, 'p99 added delay per frame (worse direction)', 'ms (clipped at 50)', 5, 50)}
${panel(series, 'cpuMsPerCallS', 470, 'bridge CPU per call-second', 'ms CPU / call-s', 1)}
${legend}
<text x="470" y="380" text-anchor="middle" font-size="10" fill="#666">${subtitle.replace(/&/g, '&amp;').replace(/</g, '&lt;')} · filled: step held (p99 ≤ 5 ms, nothing dropped or late) · hollow: failed</text>
</svg>
`;
}
