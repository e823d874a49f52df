// The policy: is this name, or this answer, blocked for this client, and by which rule? One
// decision used by the query path (stage.ts), `sinkhole check` and /api/check, so that they
// cannot disagree. A Policy is immutable: a reload builds a new one and swaps the reference.
//
// A decision is one number, so that deciding allocates nothing per query:
//   NOT_BLOCKED (-1)  nothing blocks it (no rule, an allow rule, or an exempt client)
//   >= 0              blocked by a name rule: a Match (ruleOf / offsetOf in ruleset.ts)
//   <= -2             blocked by answer-IP rule number -2 - d
import { QTYPE } from '../../wire/constants.js';
import {
  addressCount, addressLength, addressOffset, addressType, cnameCount, cnameTarget, type PackedAnswer,
} from '../../wire/packed-answer.js';
import type { NetworkList } from './cidr.js';
import { matchOf, ruleOf, type RuleRef, type RuleSet } from './ruleset.js';

export const NOT_BLOCKED = -1;

export function isBlocked(decision: number): boolean {
  return decision !== NOT_BLOCKED;
}

/** Where a blocked answer's owner name starts inside the query's name (0 for the name itself and IP rules). */
export function ownerOffsetOf(decision: number): number {
  return decision >= 0 ? decision % 256 : 0;
}

export class Policy {
  constructor(readonly rules: RuleSet, readonly exemptClients: NetworkList | null) {}

  /** The same policy with other rules (a blocklist reload). */
  withRules(rules: RuleSet): Policy {
    return new Policy(rules, this.exemptClients);
  }

  isExempt(client: string | null): boolean {
    return client !== null && this.exemptClients !== null && this.exemptClients.contains(client);
  }

  /** Whether a query for `qnameKey` from `client` is blocked, before anything is looked up. */
  decide(client: string | null, qnameKey: string, _now: number): number {
    if (this.isExempt(client)) return NOT_BLOCKED;
    const rules = this.rules;
    const m = rules.match(qnameKey);
    return m < 0 || rules.isAllow(ruleOf(m)) ? NOT_BLOCKED : m;
  }

  /**
   * Whether an answer is blocked for `client`: its CNAME chain passes through a blocked name,
   * or an address in it (A, AAAA, HTTPS/SVCB hints) falls in an ip: rule.
   */
  decideAnswer(client: string | null, answer: PackedAnswer): number {
    if (this.isExempt(client)) return NOT_BLOCKED;
    const rules = this.rules;
    for (let i = 0, n = cnameCount(answer); i < n; i++) {
      const target = cnameTarget(answer, i);
      if (target === null) continue;
      const m = rules.match(target);
      if (m >= 0 && !rules.isAllow(ruleOf(m))) return matchOf(ruleOf(m), 0);
    }
    if (rules.ipRuleCount > 0) {
      for (let i = 0, n = addressCount(answer); i < n; i++) {
        const type = addressType(answer, i);
        const offset = addressOffset(answer, i);
        const length = addressLength(answer, i);
        const r = type === QTYPE.A || type === QTYPE.AAAA
          ? rules.matchAddress(answer, offset, length)
          : matchSvcbHints(rules, answer, offset, length);
        if (r >= 0) return -2 - r;
      }
    }
    return NOT_BLOCKED;
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
function matchSvcbHints(rules: RuleSet, wire: Buffer, offset: number, length: number): number {
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
        const i = rules.matchAddress(wire, a, size);
        if (i >= 0) return i;
      }
    }
    off = value + len;
  }
  return -1;
}
