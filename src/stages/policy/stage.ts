// The policy stage: a blocked name is answered here, before the cache (so that a newly
// blocked name is blocked at once); an answer coming back from the cache or an upstream is
// checked again (CNAME chain, answer addresses). Blocked answers: A -> the IPv4 sinkhole,
// AAAA -> the IPv6 sinkhole, anything else an empty NOERROR with an SOA; with EDNS an EDE
// (RFC 8914, code 15 Blocked) names the rule.
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { ANSWERED, PASS, type Stage, type StageResult } from '../../pipeline/stage.js';
import { blockedAnswer, type SinkholeTemplates } from '../../wire/answer.js';
import type { PackedAnswer } from '../../wire/packed-answer.js';
import type { Query } from '../../wire/query.js';
import { NOT_BLOCKED, ownerOffsetOf, type Policy } from './policy.js';
import type { RuleRef } from './ruleset.js';

const EDE_BLOCKED = 15;

export class PolicyStage implements Stage {
  readonly name = 'policy';
  /** Swapped whole on reload; read once per query. */
  policy: Policy;

  constructor(policy: Policy, private readonly templates: SinkholeTemplates) {
    this.policy = policy;
  }

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    const policy = this.policy;
    const decision = policy.decide(q.clientAddress, q.qnameKey, 0);
    if (decision === NOT_BLOCKED) return PASS;
    this.block(q, pipeline, policy, decision);
    return ANSWERED;
  }

  onAnswer(q: Query, answer: PackedAnswer, pipeline: Pipeline): StageResult {
    const policy = this.policy;
    const decision = policy.decideAnswer(q.clientAddress, answer);
    if (decision === NOT_BLOCKED) return PASS;
    this.block(q, pipeline, policy, decision);
    return ANSWERED;
  }

  private block(q: Query, pipeline: Pipeline, policy: Policy, decision: number): void {
    const ede = q.edns ? { code: EDE_BLOCKED, text: edeText(policy.explain(decision)!, policy.hasGroups ? policy.groupName(q.clientAddress) : null) } : undefined;
    pipeline.reply(q, blockedAnswer(q, this.templates, ownerOffsetOf(decision), ede), 'blocked', '', decision, policy);
  }

  collect(sink: MetricsSink): void {
    const rules = this.policy.rules;
    sink.add('sinkhole_rules', 'gauge', 'Rules loaded per blocklist file.',
      rules.files.map((f) => [{ file: f.path, bundle: f.bundle }, f.lines.length + f.ipRules.length]), 'first');
    // Every worker loads the same folder: the largest count is the folder's.
    sink.add('sinkhole_blocklist_lines_latin1', 'gauge', 'Lines of the loaded list files that were not UTF-8 and were read as Latin-1.',
      rules.files.reduce((n, f) => n + f.latin1Count, 0), 'max');
  }
}

/** The rule, and the client's group where groups are configured (the group decides which bundles block). */
function edeText(ref: RuleRef, group: string | null): string {
  return `blocked by ${ref.rule} (${ref.file}:${ref.line}, bundle ${ref.bundle}${group === null ? '' : `, group ${group}`})`;
}
