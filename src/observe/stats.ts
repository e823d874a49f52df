// Query statistics for /metrics and /api/stats: counts by outcome, query type and rcode,
// kept in typed arrays so that counting a query allocates nothing.
import type { MetricsSink } from '../pipeline/metrics.js';
import type { RuleSource } from '../stages/policy/ruleset.js';
import type { ClientNameLookup } from './client-names.js';
import { OUTCOMES, type QueryEvent, type QueryObserver } from './event.js';
import { TopK } from './topk.js';
import { qtypeName, rcodeName } from '../wire/constants.js';
import { keyToText } from '../wire/names.js';

/** One bucket per minute for the last 24 hours, as a ring. */
const MINUTES = 24 * 60;
const RECENT = 50;
/** The shipped bundle of public DoH/DoT resolvers' names (blocklists/available/doh-bypass.txt). */
export const DOH_BYPASS_BUNDLE = 'doh-bypass';

export interface BlockedAttempt {
  time: string;
  client: string;
  /** The client's name (client-names files) when known. */
  name?: string;
  qname: string;
  qtype: string;
  rule: string;
  bundle: string;
}

/** What the dashboard and /api/stats show besides the metrics; added up over workers. */
export interface StatsSnapshot {
  topClients: [string, number][];
  topBundles: [string, number][];
  topDomains: [string, number][];
  /** Clients whose blocked query was in bundle doh-bypass: who tried to reach a public encrypted resolver. */
  dohBypassClients: [string, number][];
  /** Oldest first. */
  recent: BlockedAttempt[];
  timeline: { hour: string; queries: number; blocked: number }[];
  /** Blocked answers without a rule: the DoH canary, also asked by `sinkhole wait-ready`. Not attempts by clients. */
  canary?: number;
  /** Names of the clients in topClients that have one (client-names files). */
  clientNames?: Record<string, string>;
}

/** One slot of the ring of recent attempts (QueryStats.recent makes the text). */
interface RecentAttempt {
  at: number;
  client: string;
  name: string | undefined;
  qnameKey: string;
  qtype: number;
  rule: RuleSource;
}

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
  /** Keyed by qnameKey (wire/names.ts), made text in snapshot(). */
  readonly topDomains = new TopK(200);
  readonly dohBypassClients = new TopK(200);
  /** Canary answers (no rule): counted apart, not in the top lists, the attempts or the chart's blocked. */
  canary = 0;
  /**
   * The latest blocked attempts, kept raw in a ring of RECENT reused slots: recording one
   * allocates nothing, and text is made only when someone reads them.
   */
  private readonly recentRing: RecentAttempt[] = [];
  private recentNext = 0;
  /** Client names (client-names files), looked up when a blocked attempt is recorded. */
  names: ClientNameLookup | null = null;

  answered(e: QueryEvent): void {
    const q = e.query;
    const outcome = e.outcome;
    const rcode = e.rcode;
    this.byOutcome[OUTCOMES.indexOf(outcome)]!++;
    this.byType[q.qtype < 256 ? q.qtype : 256]!++;
    this.byRcode[rcode & 0x0f]!++;
    // The event's clock (read once per answer by the pipeline), not a second Date.now().
    const at = e.at;
    const minute = Math.floor(at / 60000);
    const slot = minute % MINUTES;
    if (this.minuteOf[slot] !== minute) {
      this.minuteOf[slot] = minute;
      this.perMinute[slot] = 0;
      this.blockedPerMinute[slot] = 0;
    }
    this.perMinute[slot]!++;
    if (outcome !== 'blocked') return;
    // Where the rule is, without its text (rule() would build the rule's name for every blocked query).
    const rule = e.ruleSource !== undefined ? e.ruleSource() : e.rule();
    // Blocked without a rule: the DoH canary (browsers' and wait-ready's probe), not a client's attempt.
    if (rule === null) {
      this.canary++;
      return;
    }
    // Only blocked queries build anything: who tried which messenger, and the name it asked
    // (counted by its key; made text when read).
    this.blockedPerMinute[slot]!++;
    this.topClients.add(q.clientAddress);
    this.topBundles.add(rule.bundle);
    this.topDomains.add(q.qnameKey);
    if (rule.bundle === DOH_BYPASS_BUNDLE) this.dohBypassClients.add(q.clientAddress);
    const name = this.names?.nameOf(q.clientAddress);
    const ring = this.recentRing;
    const i = this.recentNext;
    this.recentNext = (i + 1) % RECENT;
    const kept = ring[i];
    if (kept === undefined) ring.push({ at, client: q.clientAddress, name, qnameKey: q.qnameKey, qtype: q.qtype, rule });
    else {
      kept.at = at;
      kept.client = q.clientAddress;
      kept.name = name;
      kept.qnameKey = q.qnameKey;
      kept.qtype = q.qtype;
      kept.rule = rule;
    }
  }

  /** The latest blocked attempts, oldest first. */
  get recent(): BlockedAttempt[] {
    const ring = this.recentRing;
    // Until the ring is full the oldest is slot 0; after that, the next slot to be written.
    const first = ring.length < RECENT ? 0 : this.recentNext;
    const out: BlockedAttempt[] = [];
    for (let k = 0; k < ring.length; k++) {
      const r = ring[(first + k) % ring.length]!;
      out.push({
        time: new Date(r.at).toISOString(), client: r.client, ...(r.name === undefined ? {} : { name: r.name }), qname: keyToText(r.qnameKey), qtype: qtypeName(r.qtype),
        rule: `${r.rule.file}:${r.rule.line}`, bundle: r.rule.bundle,
      });
    }
    return out;
  }

  snapshot(): StatsSnapshot {
    const topClients = this.topClients.entries();
    const clientNames: Record<string, string> = {};
    for (const [client] of topClients) {
      const name = this.names?.nameOf(client);
      if (name !== undefined) clientNames[client] = name;
    }
    return {
      topClients, topBundles: this.topBundles.entries(), topDomains: this.topDomains.entries().map(([key, n]) => [keyToText(key), n]),
      dohBypassClients: this.dohBypassClients.entries(), recent: this.recent, timeline: this.timeline(), canary: this.canary, clientNames,
    };
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_queries_total', 'counter', 'Answered queries by verdict.',
      OUTCOMES.map((o, i) => [{ verdict: o === 'servfail' ? 'error' : o }, this.byOutcome[i]!]));
    const types: [Record<string, string>, number][] = [];
    this.byType.forEach((n, t) => n > 0 && types.push([{ qtype: t === 256 ? 'other' : qtypeName(t) }, n]));
    sink.add('sinkhole_queries_by_type_total', 'counter', 'Answered queries by query type.', types);
    const rcodes: [Record<string, string>, number][] = [];
    this.byRcode.forEach((n, r) => n > 0 && rcodes.push([{ rcode: rcodeName(r) }, n]));
    sink.add('sinkhole_responses_by_rcode_total', 'counter', 'Answers by response code.', rcodes);
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
