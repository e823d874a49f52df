// What the admin API asks of the server. In one process, `localBackend` answers from the
// running pipeline; with --workers the primary asks every worker instead (cluster.ts).
import type { MetricsSink } from '../pipeline/metrics.js';
import { MetricsSink as Sink } from '../pipeline/metrics.js';
import type { QueryStats } from '../observe/stats.js';
import { checkName } from '../stages/policy/check.js';
import type { Reloader } from '../stages/policy/reload.js';
import type { ReloadFigures } from '../stages/policy/reload-figures.js';
import type { GuardStage } from '../stages/guard/stage.js';
import { health, type HealthDeps, type HealthReport } from './health.js';
import type { AdminSnapshot } from './snapshot.js';

export interface AdminBackend {
  snapshot(): Promise<AdminSnapshot>;
  health(): Promise<HealthReport>;
  reload(): Promise<Record<string, unknown>>;
  check(name: string, qtype: number, client: string | null): Promise<Record<string, unknown>>;
}

/** Anything that adds figures to the metrics: the pipeline (all its stages), observers, the reloader's counts. */
export interface Collector {
  collect(sink: MetricsSink): void;
}

export interface LocalBackendDeps extends HealthDeps {
  guard: GuardStage;
  stats: QueryStats;
  reloader: Reloader;
  reloads: ReloadFigures;
  collectors: Collector[];
  sinkholeIpv4: string;
  sinkholeIpv6: string;
}

export function localBackend(deps: LocalBackendDeps): AdminBackend {
  const ruleCount = (): number => deps.policyStage.policy.rules.nameRuleCount + deps.policyStage.policy.rules.ipRuleCount;
  return {
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
    check: (name, qtype, client) => Promise.resolve(checkName({
      policy: deps.policyStage.policy, allowNets: deps.guard.allowNets, sinkholeIpv4: deps.sinkholeIpv4, sinkholeIpv6: deps.sinkholeIpv6,
    }, name, qtype, client) as unknown as Record<string, unknown>),
  };
}
