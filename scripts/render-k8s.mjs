#!/usr/bin/env node
// Renders voice-bridge's Kubernetes manifests (deploy/kubernetes/). The committed files are
// this script's output with its defaults; a test fails when they drift. For another host or
// more pods:
//
//   node scripts/render-k8s.mjs --host voice.acme.com --max-replicas 10 --out my-deploy/
//
// Why a StatefulSet and per-pod Services: a call's stream must reach the pod whose webhook
// pre-connected its agent. The webhook's TwiML names that pod at the end of the stream URL
// (/twilio/stream/<pod>[.w<slot>], BRIDGE_INSTANCE_ID = pod name); the Ingress routes that
// path to the pod's own Service. A Deployment's pods have no stable name a Service can
// select, so the Ingress could not route a stream to the pod that answered its webhook.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const DEFAULTS = { host: 'bridge.example.com', maxReplicas: 6, minReplicas: 2, image: 'voice-bridge:0.1.0', drainMs: 60_000, namespace: '' };

/** Drain (calls run to their end), then the goodbye, then the last records' flush (≤ 15 s), and margin. */
export function gracePeriodSeconds(drainMs) {
  const PRESTOP_DELAY_S = 5; // endpoints removed before the drain refuses new calls
  const GOODBYE_S = 10;
  const FLUSH_S = 15;
  return PRESTOP_DELAY_S + Math.ceil(drainMs / 1000) + GOODBYE_S + FLUSH_S + 10;
}

/** The manifests as { file: text }. */
export function render(o = {}) {
  const c = { ...DEFAULTS, ...o };
  const pods = Array.from({ length: c.maxReplicas }, (_, i) => `voice-bridge-${i}`);
  const header = (what) => `# voice-bridge: ${what}
# Rendered by scripts/render-k8s.mjs (host ${c.host}, up to ${c.maxReplicas} pods); edit the script, not this file.
`;
  const perPodServices = pods
    .map(
      (p) => `---
# Stream affinity: the pod named at the end of a stream URL, selected by the label the StatefulSet sets.
apiVersion: v1
kind: Service
metadata:
  name: ${p}
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  selector: { statefulset.kubernetes.io/pod-name: ${p} }
  ports: [{ name: http, port: 8080, targetPort: http }]
`,
    )
    .join('');
  const streamPaths = pods
    .map(
      (p) => `          - path: /twilio/stream/${p}(\\.w[0-9]+)?$
            pathType: ImplementationSpecific
            backend: { service: { name: ${p}, port: { number: 8080 } } }
`,
    )
    .join('');
  const main = `${header('the bridge (StatefulSet, Services, Ingress, autoscaling, disruption budget, secrets)')}#
#   1. Fill in the Secret below (or create it yourself and delete it here):
#      kubectl create secret generic voice-bridge --from-literal=DATABASE_URL=postgres://… \\
#        --from-literal=TWILIO_ACCOUNT_SID=AC… --from-literal=TWILIO_AUTH_TOKEN=… \\
#        --from-literal=BRIDGE_ADMIN_TOKEN=… --from-literal=OPENAI_API_KEY=…
#   2. Build and push the image (Dockerfile at the repository root), set it below.
#   3. kubectl apply -f voice-bridge.yaml -f servicemonitor.yaml (the latter needs the Prometheus Operator)
#
# Shutdown: the preStop hook waits 5 s (the pod leaves the Services and the Ingress first),
# then starts the drain with SIGTERM and waits for the process to finish it: calls run to
# their end for up to BRIDGE_DRAIN_TIMEOUT_MS, hear a goodbye, the last records are flushed.
# terminationGracePeriodSeconds covers all of it, so the kubelet never sends a second SIGTERM
# (which would cut the calls short) nor a SIGKILL in the middle of the goodbyes.
---
apiVersion: v1
kind: Secret
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
type: Opaque
stringData:
  DATABASE_URL: postgres://voicebridge:CHANGE-ME@postgres:5432/voicebridge
  TWILIO_ACCOUNT_SID: ""
  TWILIO_AUTH_TOKEN: ""
  BRIDGE_ADMIN_TOKEN: ""
---
# Every pod: webhooks, status callbacks, admin routes, streams whose pod is gone (served in full).
apiVersion: v1
kind: Service
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  selector: { app.kubernetes.io/name: voice-bridge }
  ports: [{ name: http, port: 8080, targetPort: http }]
---
# Headless: a stable DNS name per pod (BRIDGE_INTERNAL_URL), for call commands between pods.
apiVersion: v1
kind: Service
metadata:
  name: voice-bridge-pods
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  clusterIP: None
  publishNotReadyAddresses: true   # a draining pod still takes /calls/:sid/say and /hangup for its calls
  selector: { app.kubernetes.io/name: voice-bridge }
  ports: [{ name: http, port: 8080, targetPort: http }]
${perPodServices}---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  serviceName: voice-bridge-pods
  replicas: ${c.minReplicas}
  podManagementPolicy: Parallel
  selector:
    matchLabels: { app.kubernetes.io/name: voice-bridge }
  template:
    metadata:
      labels: { app.kubernetes.io/name: voice-bridge }
    spec:
      terminationGracePeriodSeconds: ${gracePeriodSeconds(c.drainMs)}
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 }
      containers:
        - name: voice-bridge
          image: ${c.image}
          args: ["start"]
          ports: [{ containerPort: 8080, name: http }]
          env:
            - name: POD_NAME
              valueFrom: { fieldRef: { fieldPath: metadata.name } }
            - name: BRIDGE_INSTANCE_ID        # the pod's name: the stream routing key
              value: $(POD_NAME)
            - name: BRIDGE_INTERNAL_URL       # where other pods forward /calls/:sid/say and /hangup
              value: http://$(POD_NAME).voice-bridge-pods:8080
            - { name: BRIDGE_PUBLIC_URL, value: "https://${c.host}" }
            - { name: BRIDGE_DRAIN_TIMEOUT_MS, value: "${c.drainMs}" }
            - { name: BRIDGE_TRUST_PROXY, value: "10.244.0.0/16" }   # your cluster's pod CIDR (the ingress controller's pods)
            - { name: HOST, value: "0.0.0.0" }
            - { name: PORT, value: "8080" }
          envFrom:
            - secretRef: { name: voice-bridge }
          readinessProbe:                     # 503 while draining, at BRIDGE_MAX_CALLS or overloaded
            httpGet: { path: /readyz, port: http }
            periodSeconds: 2
            failureThreshold: 1
          livenessProbe:                      # the process answers; never fails for load or a down database
            httpGet: { path: /healthz, port: http }
            periodSeconds: 10
            failureThreshold: 3
          startupProbe:
            httpGet: { path: /healthz, port: http }
            periodSeconds: 1
            failureThreshold: 60
          lifecycle:
            preStop:
              exec:
                command: ["/bin/sh", "-c", "sleep 5; kill -TERM 1; while kill -0 1 2>/dev/null; do sleep 1; done"]
          resources:
            requests: { cpu: 500m, memory: 256Mi }
            limits: { memory: 1Gi }
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL] }
          volumeMounts:
            - { name: data, mountPath: /data }   # BRIDGE_DATA_DIR: the outbox survives a container restart
            - { name: tmp, mountPath: /tmp }
      volumes:
        - { name: tmp, emptyDir: {} }
  volumeClaimTemplates:
    - metadata: { name: data }
      spec:
        accessModes: [ReadWriteOnce]
        resources: { requests: { storage: 1Gi } }
---
# Never more than one pod draining at a time during node maintenance.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  maxUnavailable: 1
  selector:
    matchLabels: { app.kubernetes.io/name: voice-bridge }
---
# CPU follows calls (about 1.4 ms of CPU per call-second, docs/operations/scaling.md).
# Scaling down drains a pod: its calls run to their end first.
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: StatefulSet, name: voice-bridge }
  minReplicas: ${c.minReplicas}
  maxReplicas: ${c.maxReplicas}   # one per-pod Service and Ingress path each: render again for more
  metrics:
    - type: Resource
      resource: { name: cpu, target: { type: Utilization, averageUtilization: 60 } }
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 600
      policies: [{ type: Pods, value: 1, periodSeconds: 300 }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/proxy-read-timeout: "3600"   # a call is one long WebSocket
    nginx.ingress.kubernetes.io/proxy-send-timeout: "3600"
    nginx.ingress.kubernetes.io/proxy-buffering: "off"
    # A per-pod Service without a ready endpoint (the pod is gone, restarting or draining)
    # falls back to the common Service: the stream is a miss, served in full by another pod.
    nginx.ingress.kubernetes.io/default-backend: voice-bridge
spec:
  ingressClassName: nginx
  tls: [{ hosts: [${c.host}], secretName: voice-bridge-tls }]
  rules:
    - host: ${c.host}
      http:
        paths:
          # A stream goes to the pod named in its URL: /twilio/stream/<pod>[.w<slot>].
${streamPaths}          # Webhooks, status callbacks, streams whose pod is gone: any pod.
          - path: /twilio
            pathType: Prefix
            backend: { service: { name: voice-bridge, port: { number: 8080 } } }
          # Call commands (admin token required). /metrics, /readyz and /healthz are not published:
          # Prometheus and the kubelet reach the pods directly.
          - path: /calls
            pathType: Prefix
            backend: { service: { name: voice-bridge, port: { number: 8080 } } }
`;
  const monitor = `${header('Prometheus Operator scrape config (needs its ServiceMonitor CRD)')}---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: voice-bridge
  labels: { app.kubernetes.io/name: voice-bridge }
spec:
  selector:
    matchLabels: { app.kubernetes.io/name: voice-bridge }
  endpoints:
    - port: http
      path: /metrics
      interval: 15s
`;
  return { 'voice-bridge.yaml': main, 'servicemonitor.yaml': monitor };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { host: { type: 'string' }, 'max-replicas': { type: 'string' }, 'min-replicas': { type: 'string' }, image: { type: 'string' }, 'drain-ms': { type: 'string' }, out: { type: 'string', default: 'deploy/kubernetes' } } });
  const o = {};
  if (values.host) o.host = values.host;
  if (values['max-replicas']) o.maxReplicas = Number(values['max-replicas']);
  if (values['min-replicas']) o.minReplicas = Number(values['min-replicas']);
  if (values.image) o.image = values.image;
  if (values['drain-ms']) o.drainMs = Number(values['drain-ms']);
  mkdirSync(values.out, { recursive: true });
  for (const [f, text] of Object.entries(render(o))) writeFileSync(join(values.out, f), text);
  console.log(`wrote ${Object.keys(render(o)).map((f) => join(values.out, f)).join(', ')}`);
}
