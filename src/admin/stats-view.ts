// The JSON of GET /api/stats (read by the dashboard and `sinkhole stats`), made from a snapshot.
import { metricValue, type MetricFamily } from '../pipeline/metrics.js';
import { OUTCOMES } from '../observe/event.js';
import { topOf } from '../observe/topk.js';
import type { AdminSnapshot } from './snapshot.js';

/** Per upstream label: the value of one of its metrics. */
function perUpstream(families: readonly MetricFamily[], name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of families.find((f) => f.name === name)?.samples ?? []) out.set(s.labels.upstream!, s.value);
  return out;
}

export function renderStats(s: AdminSnapshot): Record<string, unknown> {
  const f = s.families;
  const byOutcome = Object.fromEntries(OUTCOMES.map((o) => [o, metricValue(f, 'sinkhole_queries_total', { verdict: o === 'servfail' ? 'error' : o })]));
  const total = metricValue(f, 'sinkhole_queries_total');
  const hits = metricValue(f, 'sinkhole_cache_hits_total');
  const misses = metricValue(f, 'sinkhole_cache_misses_total');
  const queries = perUpstream(f, 'sinkhole_upstream_queries_total');
  const timeouts = perUpstream(f, 'sinkhole_upstream_timeouts_total');
  const lastAnswer = perUpstream(f, 'sinkhole_upstream_last_answer_timestamp_seconds');
  return {
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    queries: total, ...byOutcome, blockedShare: total > 0 ? byOutcome.blocked! / total : 0,
    cache: { entries: metricValue(f, 'sinkhole_cache_entries'), hits, misses, hitRate: hits + misses > 0 ? hits / (hits + misses) : 0 },
    rules: metricValue(f, 'sinkhole_rules_loaded'),
    reloads: { count: metricValue(f, 'sinkhole_reloads_total'), failures: metricValue(f, 'sinkhole_reload_failures_total'),
      lastMs: Math.round(metricValue(f, 'sinkhole_reload_duration_seconds') * 1000) },
    upstreams: [...queries.keys()].map((upstream) => ({
      upstream, queries: queries.get(upstream), timeouts: timeouts.get(upstream),
      lastAnswerSecondsAgo: lastAnswer.get(upstream) ? Math.round(Date.now() / 1000 - lastAnswer.get(upstream)!) : null,
    })),
    // `name`: the client's name from client-names files, when it has one.
    topBlockedClients: topOf(s.stats.topClients, 10).map((c) => (s.stats.clientNames?.[c.key] === undefined ? c : { ...c, name: s.stats.clientNames[c.key] })),
    topBlockedBundles: topOf(s.stats.topBundles, 10),
    topBlockedDomains: topOf(s.stats.topDomains, 10),
    dohBypassClients: topOf(s.stats.dohBypassClients, 10),
    recentBlocked: [...s.stats.recent].reverse().slice(0, 20),
    last24h: s.stats.timeline,
    /** DoH canary answers (browsers, wait-ready): not counted as anyone's blocked attempt. */
    canaryAnswers: s.stats.canary ?? 0,
  };
}
