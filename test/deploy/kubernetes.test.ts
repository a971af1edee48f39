/**
 * deploy/kubernetes: what is committed is what scripts/render-k8s.mjs renders; every
 * resource validates against the Kubernetes schemas (kubernetes-validate --strict,
 * offline: the schemas ship in the package); and the settings a production rollout
 * relies on are there — probes on the bridge's own health routes, a grace period longer
 * than preStop + drain + goodbye + flush, a preStop that starts the drain, a disruption
 * budget, autoscaling, stream affinity for every pod the autoscaler may create, the
 * database URL from a Secret, a ServiceMonitor.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../lifecycle/child-bridge.js';

const dir = join(repoRoot, 'deploy', 'kubernetes');
type Doc = { kind: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: any; [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
const docs = (file: string): Doc[] => parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as Doc).filter(Boolean);

describe('deploy/kubernetes', () => {
  it('is what scripts/render-k8s.mjs renders (edit the script, render again)', async () => {
    const { render } = (await import(join(repoRoot, 'scripts', 'render-k8s.mjs'))) as { render: () => Record<string, string> };
    for (const [file, text] of Object.entries(render())) expect(readFileSync(join(dir, file), 'utf8'), file).toBe(text);
  });

  it('validates against the Kubernetes schemas (kubernetes-validate --strict)', async () => {
    const bin = process.env.VB_PY_TOOLS_BIN;
    expect(bin, 'VB_PY_TOOLS_BIN is not set: npm test sets it up (scripts/ensure-py-tools.sh)').toBeTruthy();
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(join(bin!, 'kubernetes-validate'), ['--strict', join(dir, 'voice-bridge.yaml')], { timeout: 120_000 }, (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout + stderr })),
    );
    expect(r.code, r.out).toBe(0);
    const passedKinds = [...r.out.matchAll(/passed for resource (\w+)\//g)].map((m) => m[1]);
    expect(new Set(passedKinds)).toEqual(new Set(['secret', 'service', 'statefulset', 'poddisruptionbudget', 'horizontalpodautoscaler', 'ingress']));
    expect(passedKinds).toHaveLength(docs('voice-bridge.yaml').length);
  });

  it('probes, grace period, preStop drain, budget, autoscaling, affinity for every pod, Secret, ServiceMonitor', () => {
    const all = docs('voice-bridge.yaml');
    const one = (kind: string, name = 'voice-bridge') => {
      const d = all.find((x) => x.kind === kind && x.metadata.name === name);
      expect(d, `${kind}/${name}`).toBeDefined();
      return d!;
    };
    const sts = one('StatefulSet');
    const pod = sts.spec.template.spec;
    const c = pod.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    const env = Object.fromEntries(c.env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    expect(env.BRIDGE_INSTANCE_ID).toBe('$(POD_NAME)');
    const drainS = Number(env.BRIDGE_DRAIN_TIMEOUT_MS) / 1000;
    const preStop = c.lifecycle.preStop.exec.command.join(' ');
    expect(preStop).toMatch(/kill -TERM 1/);
    const preStopDelay = Number(/sleep (\d+)/.exec(preStop)?.[1]);
    // preStop delay + drain + goodbye (≤ 10 s) + the records' flush (≤ 15 s, src/main.ts) fit in the grace period.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopDelay + drainS + 10 + 15);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.envFrom).toContainEqual({ secretRef: { name: 'voice-bridge' } });
    expect(one('Secret').stringData).toHaveProperty('DATABASE_URL');
    expect(one('PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'voice-bridge' });
    // Every pod the autoscaler may create has its Service and its stream path.
    const ing = one('Ingress');
    expect(ing.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-read-timeout']).toBe('3600');
    const paths = ing.spec.rules[0].http.paths as { path: string; backend: { service: { name: string } } }[];
    for (let i = 0; i < hpa.spec.maxReplicas; i++) {
      const name = `voice-bridge-${i}`;
      expect(one('Service', name).spec.selector).toEqual({ 'statefulset.kubernetes.io/pod-name': name });
      const p = paths.find((x) => x.backend.service.name === name);
      expect(p?.path, name).toBeDefined();
      const re = new RegExp(`^${p!.path}`);
      expect(re.test(`/twilio/stream/${name}`) && re.test(`/twilio/stream/${name}.w3`) && !re.test(`/twilio/stream/${name}0`)).toBe(true);
    }
    // Metrics and health are not published through the Ingress.
    expect(paths.map((p) => p.path).filter((p) => !p.startsWith('/twilio/stream/'))).toEqual(['/twilio', '/calls']);
    const [sm] = docs('servicemonitor.yaml');
    expect(sm).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', spec: { selector: { matchLabels: { 'app.kubernetes.io/name': 'voice-bridge' } }, endpoints: [{ port: 'http', path: '/metrics' }] } });
  });
});
