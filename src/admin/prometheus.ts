// The Prometheus text format (version 0.0.4) of the metric families.
import type { MetricFamily } from '../pipeline/metrics.js';

const escape = (v: string): string => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

export function renderMetrics(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels);
      const text = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}`;
      lines.push(`${f.name}${s.suffix}${text} ${s.value}`);
    }
  }
  return lines.join('\n') + '\n';
}
