// The policy: is this name, or this answer, blocked for this client, and by which rule? One
// decision used by the query path (stage.ts), `sinkhole check` and /api/check, so that they
// cannot disagree. A Policy is immutable: a reload builds a new one and swaps the reference.
//
// A decision is one number, so that deciding allocates nothing per query:
//   NOT_BLOCKED (-1)  nothing blocks it (no rule, an allow rule, or an exempt client)
//   >= 0              blocked by a name rule: a Match (ruleOf / offsetOf in ruleset.ts)
//   <= -2             blocked by answer-IP rule number -2 - d
//
// With groups (group-policy.ts), a rule blocks only when its bundle blocks for the client's
// group now: the client's group is a memo lookup, the "blocks now" table a byte per
// (group, bundle) rebuilt at schedule boundaries, so a query indexes, it does not compute.
import { QTYPE } from '../../wire/constants.js';
import {
  addressCount, addressLength, addressOffset, addressType, cnameCount, cnameTarget, type PackedAnswer,
} from '../../wire/packed-answer.js';
import type { NetworkList } from './cidr.js';
import type { GroupExplanation, GroupPolicy } from './group-policy.js';
import { matchOf, ruleOf, type RuleRef, type RuleSet, type RuleSource } from './ruleset.js';

export const NOT_BLOCKED = -1;

/** Stands in for the group table without groups (never indexed: base -1 selects the plain match). */
const NO_GROUPS = new Uint8Array(0);

export function isBlocked(decision: number): boolean {
  return decision !== NOT_BLOCKED;
}

/** Where a blocked answer's owner name starts inside the query's name (0 for the name itself and IP rules). */
export function ownerOffsetOf(decision: number): number {
  return decision >= 0 ? decision % 256 : 0;
}

export class Policy {
  /** `groups` null: no groups, schedules or pauses; every rule blocks for every client. */
  constructor(readonly rules: RuleSet, readonly exemptClients: NetworkList | null, readonly groups: GroupPolicy | null = null) {
    groups?.setEnabledBundles(rules.enabledBundles());
  }

  /** The same policy with other rules (a blocklist reload); the group tables learn the new bundles at once. */
  withRules(rules: RuleSet): Policy {
    return new Policy(rules, this.exemptClients, this.groups);
  }

  /** The same rules with other groups (a config reload). The caller stops the old group policy's timer. */
  withGroups(groups: GroupPolicy | null, exemptClients: NetworkList | null = this.exemptClients): Policy {
    return new Policy(this.rules, exemptClients, groups);
  }

  /** Whether group lines are configured (then the EDE text names the client's group). */
  get hasGroups(): boolean {
    return this.groups !== null && this.groups.groups.size > 1;
  }

  /** The client's group by name ("default" without groups), for the EDE text and logs. */
  groupName(client: string | null): string {
    return this.groups === null ? 'default' : this.groups.groupName(this.groups.groupOf(client ?? ''));
  }

  /** Group, schedules in force and pause for `client` at `at` (for `sinkhole check`); null without groups. */
  explainGroup(client: string | null, at: number): GroupExplanation | null {
    return this.groups === null ? null : this.groups.explain(client ?? '', at);
  }

  /** Where the client's row starts in the group table; -1 without groups. */
  private rowOf(client: string | null): number {
    const groups = this.groups;
    return groups === null ? -1 : groups.groupOf(client ?? '') * groups.stride;
  }

  isExempt(client: string | null): boolean {
    return client !== null && this.exemptClients !== null && this.exemptClients.contains(client);
  }

  /** Whether a query for `qnameKey` from `client` is blocked, before anything is looked up. */
  decide(client: string | null, qnameKey: string, _now: number): number {
    if (this.isExempt(client)) return NOT_BLOCKED;
    const rules = this.rules;
    const first = rules.match(qnameKey);
    // Most names match no rule: they never look at groups.
    if (first < 0 || rules.isAllow(ruleOf(first))) return NOT_BLOCKED;
    const groups = this.groups;
    if (groups === null) return first;
    const base = groups.groupOf(client ?? '') * groups.stride;
    if (groups.active[base + rules.bundleOf(ruleOf(first))] === 1) return first;
    // The most specific rule's bundle does not block for this group: other rules of the
    // name, then the parents.
    const m = rules.matchFor(qnameKey, groups.active, base, first);
    return m < 0 || rules.isAllow(ruleOf(m)) ? NOT_BLOCKED : m;
  }

  /**
   * decide() at another moment than now (`sinkhole check --at`): the client's group row is
   * computed for `at` instead of read from the live table. Not for queries.
   */
  decideAt(client: string | null, qnameKey: string, at: number): number {
    if (this.groups === null) return this.decide(client, qnameKey, at);
    if (this.isExempt(client)) return NOT_BLOCKED;
    const row = this.groups.rowAt(this.groups.groupOf(client ?? ''), at);
    const m = this.rules.matchFor(qnameKey, row, 0);
    return m < 0 || this.rules.isAllow(ruleOf(m)) ? NOT_BLOCKED : m;
  }

  /**
   * Whether an answer is blocked for `client`: its CNAME chain passes through a blocked name,
   * or an address in it (A, AAAA, HTTPS/SVCB hints) falls in an ip: rule.
   */
  decideAnswer(client: string | null, answer: PackedAnswer): number {
    if (this.isExempt(client)) return NOT_BLOCKED;
    const rules = this.rules;
    const base = this.rowOf(client);
    const active = this.groups?.active ?? NO_GROUPS;
    for (let i = 0, n = cnameCount(answer); i < n; i++) {
      const target = cnameTarget(answer, i);
      if (target === null) continue;
      const m = base < 0 ? rules.match(target) : rules.matchFor(target, active, base);
      if (m >= 0 && !rules.isAllow(ruleOf(m))) return matchOf(ruleOf(m), 0);
    }
    if (rules.ipRuleCount > 0) {
      for (let i = 0, n = addressCount(answer); i < n; i++) {
        const type = addressType(answer, i);
        const offset = addressOffset(answer, i);
        const length = addressLength(answer, i);
        const r = type === QTYPE.A || type === QTYPE.AAAA
          ? (base < 0 ? rules.matchAddress(answer, offset, length) : rules.matchAddressFor(answer, offset, length, active, base))
          : matchSvcbHints(rules, answer, offset, length, active, base);
        if (r >= 0) return -2 - r;
      }
    }
    return NOT_BLOCKED;
  }

  /** Where the rule a decision names is, without building its text; null for NOT_BLOCKED. */
  source(decision: number): RuleSource | null {
    if (decision === NOT_BLOCKED) return null;
    return decision >= 0 ? this.rules.source(ruleOf(decision)) : this.rules.describeAddressRule(-2 - decision);
  }

  /** The rule a decision names; null for NOT_BLOCKED. */
  explain(decision: number): RuleRef | null {
    if (decision === NOT_BLOCKED) return null;
    return decision >= 0 ? this.rules.describe(ruleOf(decision)) : this.rules.describeAddressRule(-2 - decision);
  }
}

/**
 * HTTPS/SVCB rdata (RFC 9460): priority, target name (never compressed), then SvcParams as
 * key, length, value. Keys 4 (ipv4hint) and 6 (ipv6hint) carry addresses a client may use
 * without asking for A/AAAA, so answer-IP rules apply to them too.
 */
function matchSvcbHints(rules: RuleSet, wire: Buffer, offset: number, length: number, active: Uint8Array, base: number): number {
  const end = offset + length;
  let off = offset + 2;
  while (off < end && wire[off] !== 0) off += wire[off]! + 1;
  off++;
  while (off + 4 <= end) {
    const key = wire.readUInt16BE(off);
    const len = wire.readUInt16BE(off + 2);
    const value = off + 4;
    if (value + len > end) return -1;
    const size = key === 4 ? 4 : key === 6 ? 16 : 0;
    if (size > 0) {
      for (let a = value; a + size <= value + len; a += size) {
        const i = base < 0 ? rules.matchAddress(wire, a, size) : rules.matchAddressFor(wire, a, size, active, base);
        if (i >= 0) return i;
      }
    }
    off = value + len;
  }
  return -1;
}
