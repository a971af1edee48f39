/**
 * A Prometheus histogram whose observe() is cheap enough for the frame path.
 *
 * prom-client's Histogram#observe allocates on every call (a closure, a labels
 * object, a hash string) and validates labels: a few hundred ns, against a frame
 * path of ~5 µs. Here each label set is a series object chosen once, up front, and
 * observe() is a short scan over ~14 bounds, one typed-array increment and one
 * add — no allocation, no lookup. The metric implements the shape prom-client's
 * Registry and AggregatorRegistry read (`name`, `help`, `type`, `aggregator`,
 * `get()`, `reset()`), so exposition and cluster aggregation (sum per bucket) are
 * prom-client's own.
 */

/** 1-2-5 steps from `from` up to and including `to` (seconds), e.g. 1 µs … 10 ms. */
export function decadeBuckets(from: number, to: number): number[] {
  const out: number[] = [];
  for (let decade = from; decade <= to * 1.0000001; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const v = Number((decade * m).toPrecision(6));
      if (v <= to * 1.0000001) out.push(v);
    }
  }
  return out;
}

/** One label set of a FastHistogram. */
export class HistogramSeries {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: Float64Array,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value (seconds). Non-finite or negative values are ignored. */
  observe(v: number): void {
    if (!(v >= 0) || v === Infinity) return;
    const b = this.bounds;
    const n = b.length;
    let i = 0;
    while (i < n && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
  }
}

interface PromValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: Float64Array;
  readonly #series: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    const sorted = [...buckets].sort((a, b) => a - b);
    this.#bounds = Float64Array.from(sorted);
  }

  /** The series for one fixed label set (call at set-up, keep the result). */
  series(labels: Record<string, string> = {}): HistogramSeries {
    const s = new HistogramSeries(Object.freeze({ ...labels }), this.#bounds);
    this.#series.push(s);
    return s;
  }

  /** prom-client's metric contract: the values for exposition and aggregation. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: PromValue[] }> {
    const values: PromValue[] = [];
    const bounds = this.#bounds;
    for (const s of this.#series) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += s.counts[i]!;
        values.push({ value: cumulative, labels: { ...s.labels, le: bounds[i]! }, metricName: `${this.name}_bucket` });
      }
      cumulative += s.counts[bounds.length]!;
      values.push({ value: cumulative, labels: { ...s.labels, le: '+Inf' }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: cumulative, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.#series) s.reset();
  }
}
