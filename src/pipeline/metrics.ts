// Metrics as plain data: every stage and observer adds its own families through `collect()`,
// the admin API renders them (Prometheus text, /api/stats), and with --workers the primary
// adds up the workers' families by name and labels. No stage's internals are read from
// outside it.

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** How the figures of several workers combine: summed (counts), or the largest/smallest/first. */
export type MergeRule = 'sum' | 'max' | 'min' | 'first';

export interface Sample {
  /** '' for plain metrics; '_bucket', '_sum' or '_count' for histograms. */
  suffix: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  merge: MergeRule;
  samples: Sample[];
}

export class MetricsSink {
  readonly families: MetricFamily[] = [];

  /** A counter or gauge: one value, or one value per label set. */
  add(name: string, type: 'counter' | 'gauge', help: string, values: number | [Record<string, string>, number][], merge: MergeRule = 'sum'): void {
    const samples = typeof values === 'number'
      ? [{ suffix: '', labels: {}, value: values }]
      : values.map(([labels, value]) => ({ suffix: '', labels, value }));
    this.family(name, type, help, merge).push(...samples);
  }

  /** The samples of the family `name`: several sources (e.g. one forwarder per zone) may add to one family. */
  private family(name: string, type: MetricType, help: string, merge: MergeRule): Sample[] {
    let f = this.families.find((x) => x.name === name);
    if (f === undefined) {
      f = { name, type, help, merge, samples: [] };
      this.families.push(f);
    }
    return f.samples;
  }

  /**
   * A histogram per label set: `counts[i]` observations in bucket i (upper bounds `bounds`,
   * one more bucket past the last bound), `sum` their total, in the metric's unit.
   */
  histogram(name: string, help: string, series: { labels: Record<string, string>; counts: ArrayLike<number>; sum: number }[], bounds: readonly number[]): void {
    const samples: Sample[] = [];
    for (const s of series) {
      let cumulative = 0;
      bounds.forEach((le, b) => {
        cumulative += s.counts[b]!;
        samples.push({ suffix: '_bucket', labels: { ...s.labels, le: String(le) }, value: cumulative });
      });
      cumulative += s.counts[bounds.length]!;
      samples.push({ suffix: '_bucket', labels: { ...s.labels, le: '+Inf' }, value: cumulative });
      samples.push({ suffix: '_sum', labels: s.labels, value: s.sum });
      samples.push({ suffix: '_count', labels: s.labels, value: cumulative });
    }
    this.family(name, 'histogram', help, 'sum').push(...samples);
  }
}

/** A metric's value (the sum over its samples with these labels, or every sample). */
export function metricValue(families: readonly MetricFamily[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  if (family === undefined) return 0;
  let total = 0;
  for (const s of family.samples) {
    if (s.suffix !== '' && s.suffix !== '_count') continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** Several processes' families as one, each sample combined by its family's merge rule. */
export function mergeFamilies(lists: readonly (readonly MetricFamily[])[]): MetricFamily[] {
  const merged = new Map<string, MetricFamily>();
  const index = new Map<string, Sample>();
  for (const families of lists) {
    for (const f of families) {
      let m = merged.get(f.name);
      if (m === undefined) {
        m = { ...f, samples: [] };
        merged.set(f.name, m);
      }
      for (const s of f.samples) {
        const key = `${f.name}${s.suffix}${JSON.stringify(s.labels)}`;
        const seen = index.get(key);
        if (seen === undefined) {
          const copy = { ...s };
          index.set(key, copy);
          m.samples.push(copy);
        } else if (f.merge === 'sum') seen.value += s.value;
        else if (f.merge === 'max') seen.value = Math.max(seen.value, s.value);
        else if (f.merge === 'min') seen.value = Math.min(seen.value, s.value);
      }
    }
  }
  return [...merged.values()];
}
