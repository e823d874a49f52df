// Query statistics for /metrics and /api/stats: counts by outcome, query type and rcode,
// kept in typed arrays so that counting a query allocates nothing.
import type { RuleRef } from '../stages/policy/ruleset.js';
import type { Outcome, QueryObserver } from '../pipeline/resolver.js';
import { TopK } from './topk.js';
import { qtypeName } from '../wire/constants.js';
import { keyToText } from '../wire/names.js';
import type { Query } from '../wire/query.js';

/** One bucket per minute for the last 24 hours, as a ring. */
const MINUTES = 24 * 60;
const RECENT = 50;

export interface BlockedAttempt {
  time: string;
  client: string;
  qname: string;
  qtype: string;
  rule: string;
  bundle: string;
}

export const OUTCOMES: readonly Outcome[] = ['blocked', 'forwarded', 'cached', 'refused', 'servfail'];

export class QueryStats implements QueryObserver {
  readonly byOutcome = new Float64Array(OUTCOMES.length);
  /** Index = qtype for types below 256; 256 counts every other type. */
  readonly byType = new Float64Array(257);
  readonly byRcode = new Float64Array(16);
  readonly startedAt = Date.now();

  /** Queries and blocked queries per minute; `minuteOf` says which minute a slot holds. */
  readonly perMinute = new Float64Array(MINUTES);
  readonly blockedPerMinute = new Float64Array(MINUTES);
  private readonly minuteOf = new Float64Array(MINUTES);
  readonly topClients = new TopK(200);
  readonly topBundles = new TopK(100);
  readonly topDomains = new TopK(200);
  /** The latest blocked attempts, kept raw: text is made only when someone reads them. */
  private readonly recentRaw: { at: number; client: string; qnameKey: string; qtype: number; rule: RuleRef | undefined }[] = [];

  answered(q: Query, outcome: Outcome, rcode: number, _upstream: string, describeRule: (() => RuleRef) | null): void {
    this.byOutcome[OUTCOMES.indexOf(outcome)]!++;
    this.byType[q.qtype < 256 ? q.qtype : 256]!++;
    this.byRcode[rcode & 0x0f]!++;
    const minute = Math.floor(Date.now() / 60000);
    const slot = minute % MINUTES;
    if (this.minuteOf[slot] !== minute) {
      this.minuteOf[slot] = minute;
      this.perMinute[slot] = 0;
      this.blockedPerMinute[slot] = 0;
    }
    this.perMinute[slot]!++;
    if (outcome !== 'blocked') return;
    // Only blocked queries build anything: who tried which messenger.
    this.blockedPerMinute[slot]!++;
    const rule = describeRule?.();
    this.topClients.add(q.clientAddress);
    this.topBundles.add(rule?.bundle ?? 'canary');
    this.topDomains.add(rule?.rule ?? keyToText(q.qnameKey));
    if (this.recentRaw.length >= RECENT) this.recentRaw.shift();
    this.recentRaw.push({ at: Date.now(), client: q.clientAddress, qnameKey: q.qnameKey, qtype: q.qtype, rule });
  }

  get recent(): BlockedAttempt[] {
    return this.recentRaw.map((r) => ({
      time: new Date(r.at).toISOString(), client: r.client, qname: keyToText(r.qnameKey), qtype: qtypeName(r.qtype),
      rule: r.rule ? `${r.rule.file}:${r.rule.line}` : '', bundle: r.rule?.bundle ?? '',
    }));
  }

  /** Queries and blocked queries per hour for the last 24 hours, oldest first. */
  timeline(): { hour: string; queries: number; blocked: number }[] {
    const now = Math.floor(Date.now() / 60000);
    const hours: { hour: string; queries: number; blocked: number }[] = [];
    for (let h = 23; h >= 0; h--) {
      let queries = 0;
      let blocked = 0;
      for (let m = 0; m < 60; m++) {
        const minute = now - h * 60 - m;
        const slot = minute % MINUTES;
        if (this.minuteOf[slot] === minute) {
          queries += this.perMinute[slot]!;
          blocked += this.blockedPerMinute[slot]!;
        }
      }
      hours.push({ hour: new Date((now - h * 60) * 60000).toISOString().slice(0, 13) + ':00Z', queries, blocked });
    }
    return hours;
  }
}
