// "Why is this name blocked?": the verdict the server would give a name, the rule that
// decides it, and every rule in every file that covers the name. Used by `sinkhole check`
// and the admin API. It asks the same Policy the query path asks (policy.ts), after the
// guard's checks, in the pipeline's order; given an upstream answer it applies the answer
// rules too (CNAME chain, answer addresses).
import { CANARY_DOMAIN } from '../guard/canary.js';
import { QTYPE, qtypeName } from '../../wire/constants.js';
import { textToKey } from '../../wire/names.js';
import type { PackedAnswer } from '../../wire/packed-answer.js';
import type { NetworkList } from './cidr.js';
import type { GroupExplanation } from './group-policy.js';
import { NOT_BLOCKED, type Policy } from './policy.js';
import type { RuleRef } from './ruleset.js';

export type CheckVerdict = 'blocked' | 'allowed' | 'refused' | 'exempt';

export interface CheckResult {
  name: string;
  qtype: string;
  client: string | null;
  /** The client's name when it was given by name (`--client alice-pc`): `client` is its address. */
  clientName?: string;
  verdict: CheckVerdict;
  /** What the client would get: an address, "NODATA (SOA)", "NXDOMAIN", "REFUSED" or "forwarded upstream". */
  answer: string;
  reason: string;
  /** The rule that decided, when one did. */
  decidedBy: RuleRef | null;
  /** Every name rule covering the name, most specific first. */
  rules: RuleRef[];
  /** The client's group, the schedules its lines use (in force or not) and its pause; null without groups. */
  group: GroupExplanation | null;
  /** The moment checked (ISO, local offset), when it is not now. */
  at: string | null;
}

export interface CheckContext {
  policy: Policy;
  allowNets: NetworkList | null;
  sinkholeIpv4: string;
  sinkholeIpv6: string;
}

/**
 * Returns the result, or an error message for a name that is not a valid host name. With
 * `answer` (what an upstream answered for the name), a name that is not blocked itself is
 * checked as the query path checks the answer.
 */
export function checkName(ctx: CheckContext, name: string, qtype: number, client: string | null, answer: PackedAnswer | null = null,
  at: number | null = null): CheckResult | { error: string } {
  const key = textToKey(name);
  if (typeof key !== 'string') return { error: `"${name}" is not a valid name: ${key.error}` };
  const { policy } = ctx;
  const rules = policy.rules.rulesCovering(key).sort((a, b) => b.rule.length - a.rule.length);
  const when = at ?? Date.now();
  const base = { name, qtype: qtypeName(qtype), client, rules, group: policy.hasGroups ? policy.explainGroup(client, when) : null, at: at === null ? null : new Date(at).toString() };
  if (client !== null && ctx.allowNets !== null && !ctx.allowNets.contains(client)) {
    return { ...base, verdict: 'refused', answer: 'REFUSED', reason: `client ${client} is not in any allow-net network`, decidedBy: null };
  }
  if (name.toLowerCase().replace(/\.$/, '') === CANARY_DOMAIN) {
    return { ...base, verdict: 'blocked', answer: 'NXDOMAIN', reason: 'the DNS-over-HTTPS canary domain is always answered NXDOMAIN', decidedBy: null };
  }
  if (policy.isExempt(client)) {
    return { ...base, verdict: 'exempt', answer: 'forwarded upstream', reason: `client ${client} is exempt (exempt-client)`, decidedBy: null };
  }
  const sinkholed = qtype === QTYPE.A ? ctx.sinkholeIpv4 : qtype === QTYPE.AAAA ? ctx.sinkholeIpv6 : 'NODATA (SOA)';
  const decision = at === null ? policy.decide(client, key, when) : policy.decideAt(client, key, when);
  if (decision !== NOT_BLOCKED) {
    const decidedBy = policy.explain(decision)!;
    return { ...base, verdict: 'blocked', answer: sinkholed, reason: `block rule ${decidedBy.rule} is the most specific rule`, decidedBy };
  }
  if (answer !== null) {
    const byAnswer = policy.decideAnswer(client, answer);
    if (byAnswer !== NOT_BLOCKED) {
      const decidedBy = policy.explain(byAnswer)!;
      const why = byAnswer >= 0 ? `the answer's CNAME chain passes through ${decidedBy.rule}, blocked` : `an address in the answer falls in ${decidedBy.rule}`;
      return { ...base, verdict: 'blocked', answer: sinkholed, reason: why, decidedBy };
    }
  }
  // Not blocked: the most specific covering rule, if any, is an allow rule.
  const m = policy.rules.match(key);
  const upstream = answer !== null ? 'forwarded upstream (its answer passes the answer rules)' : 'forwarded upstream';
  if (m < 0) return { ...base, verdict: 'allowed', answer: upstream, reason: 'no rule covers this name', decidedBy: null };
  const decidedBy = policy.explain(m)!;
  if (!decidedBy.allow) {
    const group = base.group;
    const why = group === null ? 'its bundle does not block' : group.paused ? `blocking is paused for group ${group.group}`
      : `bundle ${decidedBy.bundle} does not block for group ${group.group} ${at === null ? 'now' : 'then'}`;
    return { ...base, verdict: 'allowed', answer: upstream, reason: `block rule ${decidedBy.rule} covers the name, but ${why}`, decidedBy: null };
  }
  return { ...base, verdict: 'allowed', answer: upstream, reason: `allow rule ${decidedBy.rule} is the most specific rule`, decidedBy };
}

export function formatCheck(r: CheckResult): string {
  const lines = [`${r.name} ${r.qtype}${r.client ? ` from ${r.clientName ? `${r.clientName} (${r.client})` : r.client}` : ''}${r.at ? ` at ${r.at}` : ''}: ${r.verdict.toUpperCase()} -> ${r.answer}`, `  why: ${r.reason}`];
  if (r.group) {
    const g = r.group;
    lines.push(`  group: ${g.group}${g.matchedBy ? ` (${g.matchedBy.cidr}, ${g.matchedBy.where})` : ' (in no group)'}${g.paused ? ', PAUSED' : ''}${g.listed ? '' : ', blocked by every enabled bundle'}`);
    const inForce = g.schedules.filter((s) => s.inForce).map((s) => s.name);
    if (g.schedules.length > 0) lines.push(`  schedules in force: ${inForce.length > 0 ? inForce.join(', ') : 'none'} (of ${g.schedules.map((s) => `${s.name}: ${s.windows}`).join('; ')})`);
  }
  if (r.decidedBy) lines.push(`  decided by: ${r.decidedBy.allow ? 'allow' : 'block'} ${r.decidedBy.rule} (${r.decidedBy.file}:${r.decidedBy.line}, bundle ${r.decidedBy.bundle})`);
  if (r.rules.length > 0) {
    lines.push('  rules covering this name:');
    for (const x of r.rules) lines.push(`    ${x.allow ? 'allow' : 'block'} ${x.rule}  ${x.file}:${x.line} (${x.bundle})`);
  }
  return lines.join('\n');
}
