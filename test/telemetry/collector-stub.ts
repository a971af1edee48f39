/**
 * A local OTLP/HTTP trace collector for the tests: a real HTTP server on 127.0.0.1
 * that takes POST /v1/traces in protobuf (decoded with protobufjs and the subset of
 * the OTLP trace schema written out below) or JSON, keeps every span with its
 * resource, and answers 200 with an empty ExportTraceServiceResponse.
 */
import { once, EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

/** opentelemetry/proto/collector/trace/v1 and its dependencies, the fields the tests read (numbers as in the OTLP schema). */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  repeated Event events = 11;
  Status status = 15;
  fixed32 flags = 16;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const RequestType = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('otlp.ExportTraceServiceRequest');

export const SpanKind = { INTERNAL: 1, SERVER: 2 } as const;
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export type AttrValue = string | number | boolean | AttrValue[] | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttrValue>;
  status: { code: number; message: string };
  events: { name: string; attributes: Record<string, AttrValue> }[];
  resource: Record<string, AttrValue>;
  scope: string;
}

export interface ReceivedRequest {
  contentType: string;
  headers: IncomingHttpHeaders;
  spans: number;
}

export interface CollectorStub {
  /** Base URL (http://127.0.0.1:port), for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly requests: ReceivedRequest[];
  /** Resolves with the spans once `until(spans)` holds, checked on each request that arrives; rejects after `boundMs`. */
  waitFor(until: (spans: ReceivedSpan[]) => boolean, boundMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- decoded OTLP is untyped JSON */
function value(v: any): AttrValue {
  if (v == null) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('arrayValue' in v) return (v.arrayValue?.values ?? []).map(value);
  return null;
}

function attributes(list: any[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

/** OTLP decoded to one shape: protobuf through toObject (ids base64), JSON as sent (ids hex). */
function spansOf(body: any, idsAreBase64: boolean): ReceivedSpan[] {
  const hex = (id: string | undefined): string => (!id ? '' : idsAreBase64 ? Buffer.from(id, 'base64').toString('hex') : id.toLowerCase());
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: Number(s.kind ?? 0),
          startNs: BigInt(s.startTimeUnixNano ?? 0),
          endNs: BigInt(s.endTimeUnixNano ?? 0),
          attributes: attributes(s.attributes),
          status: { code: Number(s.status?.code ?? 0), message: s.status?.message ?? '' },
          events: (s.events ?? []).map((e: any) => ({ name: e.name, attributes: attributes(e.attributes) })),
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export async function startCollectorStub(): Promise<CollectorStub> {
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const arrivals = new EventEmitter();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const contentType = String(req.headers['content-type'] ?? '');
      let got: ReceivedSpan[];
      try {
        got = contentType.startsWith('application/json')
          ? spansOf(JSON.parse(raw.toString('utf8')), false)
          : spansOf(RequestType.toObject(RequestType.decode(raw), { longs: String, bytes: String, defaults: false }), true);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(e));
        return;
      }
      spans.push(...got);
      requests.push({ contentType, headers: req.headers, spans: got.length });
      if (contentType.startsWith('application/json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      arrivals.emit('spans');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    waitFor(until, boundMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!until(spans)) return;
          clearTimeout(bound);
          arrivals.off('spans', check);
          resolve(spans);
        };
        const bound = setTimeout(() => {
          arrivals.off('spans', check);
          reject(new Error(`the collector stub did not get the expected spans within ${boundMs} ms; it has: ${spans.map((s) => s.name).join(', ') || 'none'}`));
        }, boundMs);
        arrivals.on('spans', check);
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
