/**
 * deploy/grafana/voice-bridge.json: a Grafana dashboard whose every query names only
 * metrics the bridge exports (a renamed metric would leave a panel silently empty).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/metrics.js';
import { repoRoot } from '../lifecycle/child-bridge.js';

describe('deploy/grafana', () => {
  it('every panel query uses metrics the bridge exports, with their histogram suffixes', async () => {
    const dash = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'grafana', 'voice-bridge.json'), 'utf8')) as { uid: string; panels: { title: string; targets: { expr: string }[] }[] };
    expect(dash.uid).toBe('voice-bridge');
    const m = createMetrics({ dspInfo: () => undefined, defaultMetrics: false });
    try {
      const exported = new Set<string>();
      for (const x of (await m.registry.getMetricsAsJSON()) as unknown as { name: string; type: string }[]) {
        if (x.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(x.name + s);
        else exported.add(x.name);
      }
      const used = dash.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\bvoice_bridge_[a-z0-9_]+/g)].map((x) => [p.title, x[0]] as const)));
      expect(used.length).toBeGreaterThan(10);
      expect(used.filter(([, name]) => !exported.has(name))).toEqual([]);
    } finally {
      m.close();
    }
  });
});
