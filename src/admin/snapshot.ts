// Everything /metrics, /api/stats and the dashboard show, as plain data: one process's
// figures, or (with --workers) every worker's added up by the primary (cluster.ts).
import { mergeFamilies, type MetricFamily } from '../pipeline/metrics.js';
import type { StatsSnapshot } from '../observe/stats.js';

export interface AdminSnapshot {
  startedAt: number;
  /** Every stage's and observer's metrics (pipeline/metrics.ts). */
  families: MetricFamily[];
  stats: StatsSnapshot;
}

/** The workers' snapshots as one: metrics by their merge rules, top lists added up, the latest attempts interleaved by time. */
export function mergeSnapshots(list: readonly AdminSnapshot[]): AdminSnapshot {
  const [first] = list;
  if (first === undefined) throw new Error('no snapshot to merge');
  const addTop = (lists: [string, number][][]): [string, number][] => {
    const sum = new Map<string, number>();
    for (const l of lists) for (const [k, n] of l) sum.set(k, (sum.get(k) ?? 0) + n);
    return [...sum];
  };
  const stats = list.map((s) => s.stats);
  return {
    startedAt: Math.min(...list.map((s) => s.startedAt)),
    families: mergeFamilies(list.map((s) => s.families)),
    stats: {
      topClients: addTop(stats.map((s) => s.topClients)),
      clientNames: Object.assign({}, ...stats.map((s) => s.clientNames ?? {})) as Record<string, string>,
      topBundles: addTop(stats.map((s) => s.topBundles)),
      topDomains: addTop(stats.map((s) => s.topDomains)),
      dohBypassClients: addTop(stats.map((s) => s.dohBypassClients)),
      recent: stats.flatMap((s) => s.recent).sort((a, b) => a.time.localeCompare(b.time)).slice(-50),
      canary: stats.reduce((n, s) => n + (s.canary ?? 0), 0),
      timeline: first.stats.timeline.map((h, i) => ({
        hour: h.hour,
        queries: stats.reduce((n, s) => n + (s.timeline[i]?.queries ?? 0), 0),
        blocked: stats.reduce((n, s) => n + (s.timeline[i]?.blocked ?? 0), 0),
      })),
    },
  };
}
