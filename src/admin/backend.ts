// What the admin API asks of the server. In one process, `localBackend` answers from the
// running pipeline; with --workers the primary asks every worker instead (cluster.ts).
import type { MetricsSink } from '../pipeline/metrics.js';
import { MetricsSink as Sink } from '../pipeline/metrics.js';
import type { QueryStats } from '../observe/stats.js';
import type { AnswerCache } from '../stages/cache/answer-cache.js';
import { checkName } from '../stages/policy/check.js';
import { historyHandlers } from '../observe/history/api.js';
import { buildQuery } from '../wire/build-query.js';
import type { PackedAnswer } from '../wire/packed-answer.js';
import { parseQuery, Query } from '../wire/query.js';
import type { Reloader } from '../stages/policy/reload.js';
import type { ReloadFigures } from '../stages/policy/reload-figures.js';
import type { GuardStage } from '../stages/guard/stage.js';
import type { GroupRuntime } from '../stages/policy/group-setup.js';
import { ALL_GROUPS } from '../stages/policy/pause.js';
import { health, type HealthDeps, type HealthReport } from './health.js';
import type { AdminSnapshot } from './snapshot.js';

export interface AdminBackend {
  /** The blocklist folder (block, allow, bundles); null when this server does not know it. */
  readonly blocklists: string | null;
  snapshot(): Promise<AdminSnapshot>;
  health(): Promise<HealthReport>;
  reload(): Promise<Record<string, unknown>>;
  check(name: string, qtype: number, client: string | null, at?: number | null): Promise<Record<string, unknown>>;
  /** Pauses blocking for a group (null: every client) for forMs (null: until resume). */
  pause(group: string | null, forMs: number | null): Promise<Record<string, unknown>>;
  resume(group: string | null): Promise<Record<string, unknown>>;
  /** The pauses running now (dashboard). */
  pauses(): Promise<Record<string, unknown>>;
  /** Fetches every list-url now; what changed is in force once the reload that follows is done. */
  updateLists(): Promise<Record<string, unknown>>;
  /** GET /api/report: the history database, as `sinkhole report --format json`. */
  report(params: URLSearchParams): Promise<{ status: number; body: unknown }>;
  /** GET /api/attempts: single blocked attempts from the history database, newest first, a page at a time. */
  attempts(params: URLSearchParams): Promise<{ status: number; body: unknown }>;
}

/** Anything that adds figures to the metrics: the pipeline (all its stages), observers, the reloader's counts. */
export interface Collector {
  collect(sink: MetricsSink): void;
}

export interface LocalBackendDeps extends HealthDeps {
  guard: GuardStage;
  cache: AnswerCache;
  stats: QueryStats;
  reloader: Reloader;
  reloads: ReloadFigures;
  collectors: Collector[];
  groups: GroupRuntime;
  sinkholeIpv4: string;
  sinkholeIpv6: string;
  /** Where history.sqlite is. */
  stateDir: string;
}

export function localBackend(deps: LocalBackendDeps): AdminBackend {
  const { report, attempts } = historyHandlers(deps.stateDir);
  const ruleCount = (): number => deps.policyStage.policy.rules.nameRuleCount + deps.policyStage.policy.rules.ipRuleCount;
  return {
    blocklists: deps.blocklists,
    snapshot: () => {
      const sink = new Sink();
      for (const c of deps.collectors) c.collect(sink);
      sink.add('sinkhole_rules_loaded', 'gauge', 'Rules in force (name and answer-IP rules).', ruleCount(), 'first');
      return Promise.resolve({ startedAt: deps.stats.startedAt, families: sink.families, stats: deps.stats.snapshot() });
    },
    health: () => health(deps),
    reload: async () => {
      const before = deps.reloads.count;
      await deps.reloader.trigger('admin');
      return { reloaded: deps.reloads.count > before, rules: ruleCount(), ms: deps.reloads.lastMs };
    },
    report,
    attempts,
    check: (name, qtype, client, at = null) => {
      const context = { policy: deps.policyStage.policy, allowNets: deps.guard.allowNets, sinkholeIpv4: deps.sinkholeIpv4, sinkholeIpv6: deps.sinkholeIpv6 };
      // The answer the server holds for the name, if any: the answer rules (CNAME chain,
      // addresses) apply to it as they would to the next query.
      const cached = cachedAnswer(deps.cache, name, qtype);
      const result = checkName(context, name, qtype, client, cached, at);
      return Promise.resolve({ ...result, answerChecked: cached === null ? 'none (not in the cache)' : 'the cached answer' } as unknown as Record<string, unknown>);
    },
    pause: (group, forMs) => {
      const known = deps.policyStage.policy.groups?.groups.names ?? ['default'];
      if (group !== null && !known.includes(group.toLowerCase())) {
        return Promise.reject(new Error(`unknown group "${group}"; groups: ${known.join(', ')}`));
      }
      const p = deps.groups.pause.pause(group ?? ALL_GROUPS, forMs);
      return Promise.resolve({ paused: p.group === ALL_GROUPS ? 'all' : p.group, until: p.until === null ? null : new Date(p.until).toISOString(), pauses: pauseList(deps) });
    },
    resume: (group) => {
      const had = deps.groups.pause.resume(group ?? ALL_GROUPS);
      return Promise.resolve({ resumed: had, pauses: pauseList(deps) });
    },
    pauses: () => Promise.resolve({ pauses: pauseList(deps), lists: deps.groups.subscriptions?.status() ?? [] }),
    updateLists: async () => {
      const subs = deps.groups.subscriptions;
      if (subs === null) return { lists: [], note: 'no list-url lines are configured' };
      const results = await subs.updateNow();
      // The reload the update set off (onListsUpdated); trigger() waits for it, or runs one.
      if (results.some((r) => r.outcome === 'updated')) await deps.reloader.trigger('lists update');
      return { lists: results, rules: ruleCount() };
    },
  };
}

/** The cached answer for NAME and TYPE, whatever the EDNS state of the query that filled it. */
function cachedAnswer(cache: AnswerCache, name: string, qtype: number): PackedAnswer | null {
  let q: ReturnType<typeof parseQuery>;
  try {
    q = parseQuery(buildQuery(name, qtype));
  } catch {
    return null;
  }
  if (!(q instanceof Query)) return null;
  // The key's last byte is the EDNS state: none, EDNS, EDNS with DO (wire/query.ts).
  const stem = q.cacheKey.slice(0, -1);
  for (const state of ['\x00', '\x01', '\x02']) {
    const hit = cache.peek(stem + state);
    if (hit !== undefined) return hit;
  }
  return null;
}

function pauseList(deps: LocalBackendDeps): { group: string; until: string | null }[] {
  return deps.groups.pause.list().map((p) => ({ group: p.group === ALL_GROUPS ? 'all' : p.group, until: p.until === null ? null : new Date(p.until).toISOString() }));
}
