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
import type { ClientNameSource } from '../observe/client-names.js';
import { isIP } from 'node:net';
import { health, type HealthDeps, type HealthReport } from './health.js';
import type { AdminSnapshot } from './snapshot.js';
import type { FleetOrder } from '../fleet/node.js';
import type { FleetView } from '../fleet/view.js';

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
  /** A fleet replica: bundle and list changes go to the primary (src/fleet/node.ts), whose folder is the fleet's. */
  fleetOrder?: (o: FleetOrder) => Promise<Record<string, unknown>>;
  /** In a fleet: every node and the fleet's counts, from Redis (GET /api/fleet, the console). */
  fleetView?: () => Promise<FleetView>;
}

/** What a config re-read did: the policy lines in force now, or the one-line reason the running policy stayed. */
export type ConfigReload = { reloaded: true; restartNeeded: string[] } | { reloaded: false; error: string };

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
  /** client-names files: /api/check?client=NAME looks the name up here. */
  clientNames: ClientNameSource | null;
  /** Re-reads the config file's policy lines (SIGHUP's work); null when the server was started without one. */
  reloadConfig(reason: string): Promise<ConfigReload | null>;
  sinkholeIpv4: string;
  sinkholeIpv6: string;
  /** Where history.sqlite is. */
  stateDir: string;
  fleetOrder?: AdminBackend['fleetOrder'];
  fleetView?: AdminBackend['fleetView'];
}

export function localBackend(deps: LocalBackendDeps): AdminBackend {
  const { report, attempts } = historyHandlers(deps.stateDir);
  const ruleCount = (): number => deps.policyStage.policy.rules.nameRuleCount + deps.policyStage.policy.rules.ipRuleCount;
  return {
    blocklists: deps.blocklists,
    ...(deps.fleetOrder ? { fleetOrder: deps.fleetOrder } : {}),
    ...(deps.fleetView ? { fleetView: deps.fleetView } : {}),
    snapshot: () => {
      const sink = new Sink();
      for (const c of deps.collectors) c.collect(sink);
      sink.add('sinkhole_rules_loaded', 'gauge', 'Rules in force (name and answer-IP rules).', ruleCount(), 'first');
      return Promise.resolve({ startedAt: deps.stats.startedAt, families: sink.families, stats: deps.stats.snapshot() });
    },
    health: () => health(deps),
    reload: async () => {
      const before = deps.reloads.count;
      // Like SIGHUP: the config file's policy lines (which reload the rules), else the rules alone.
      const config = await deps.reloadConfig('admin');
      if (config === null || !config.reloaded) await deps.reloader.trigger('admin');
      return {
        reloaded: deps.reloads.count > before, rules: ruleCount(), ms: deps.reloads.lastMs,
        ...(config === null ? {} : { config }),
      };
    },
    report,
    attempts,
    check: (name, qtype, clientGiven, at = null) => {
      // A client may be given by name (client-names files); the check is then for its first address.
      const client = clientGiven === null || isIP(clientGiven) !== 0 ? clientGiven : deps.clientNames?.addressesOf(clientGiven)[0] ?? null;
      if (clientGiven !== null && client === null) {
        return Promise.resolve({ error: deps.clientNames === null ? `client "${clientGiven}" is not an IP address, and no client-names files are configured`
          : `client "${clientGiven}" is not an IP address nor a name in the client-names files` });
      }
      const context = { policy: deps.policyStage.policy, allowNets: deps.guard.allowNets, sinkholeIpv4: deps.sinkholeIpv4, sinkholeIpv6: deps.sinkholeIpv6 };
      // The answer the server holds for the name, if any: the answer rules (CNAME chain,
      // addresses) apply to it as they would to the next query.
      const cached = cachedAnswer(deps.cache, name, qtype);
      const result = checkName(context, name, qtype, client, cached, at);
      const named = client !== clientGiven && !('error' in result) ? { ...result, clientName: clientGiven } : result;
      return Promise.resolve({ ...named, answerChecked: cached === null ? 'none (not in the cache)' : 'the cached answer' } as unknown as Record<string, unknown>);
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
      if (subs === null) {
        return { lists: [], note: deps.fleetOrder ? 'this node follows the fleet\'s primary, which fetches the lists: run "sinkhole lists update" there' : 'no list-url lines are configured' };
      }
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

/**
 * The pauses running now, each with what it switches off: the bundles that would block for
 * the group (for "all": for any group) at this moment without the pause.
 */
function pauseList(deps: LocalBackendDeps): { group: string; until: string | null; secondsLeft: number | null; bundles: string[] }[] {
  const policy = deps.policyStage.policy.groups;
  const now = Date.now();
  const bundlesOf = (group: string): string[] => {
    if (policy === null) return [];
    const indexes = group === ALL_GROUPS ? policy.groups.names.map((_n, i) => i) : [policy.groups.indexOf(group)].filter((i) => i >= 0);
    return [...new Set(indexes.flatMap((i) => policy.blockingAt(i, now, { pauses: false })))].sort();
  };
  return deps.groups.pause.list().map((p) => ({
    group: p.group === ALL_GROUPS ? 'all' : p.group,
    until: p.until === null ? null : new Date(p.until).toISOString(),
    secondsLeft: p.until === null ? null : Math.max(0, Math.round((p.until - now) / 1000)),
    bundles: bundlesOf(p.group),
  }));
}
