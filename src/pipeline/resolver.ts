// The query path, in one direction: guard -> policy -> cache -> forwarder. Each stage either
// answers or hands on. Answers are made from the query's bytes and the upstream's bytes;
// nothing is decoded into objects and re-encoded on the way back.
import { AnswerCache } from '../stages/cache/answer-cache.js';
import type { BlockedQueryLog, Logger } from '../observe/log.js';
import { CANARY_KEY } from '../stages/guard/canary.js';
import type { NetworkList } from '../stages/policy/cidr.js';
import type { RuleRef, RuleSet } from '../stages/policy/ruleset.js';
import type { Transport } from '../net/transport.js';
import type { Forwarder, ForwardResult } from '../stages/forward/forwarder.js';
import { blockedAnswer, emptyAnswer, queryEmptyAnswer, type SinkholeTemplates } from '../wire/answer.js';
import { QTYPE, RCODE, qtypeName, rcodeName } from '../wire/constants.js';
import { keyToText } from '../wire/names.js';
import {
  addressCount, addressLength, addressOffset, addressType, cnameCount, cnameTarget, relayPacked, type PackedAnswer,
} from '../wire/packed-answer.js';
import { DROP, parseQuery, Query } from '../wire/query.js';


/** EDE codes (RFC 8914) we send. */
const EDE_BLOCKED = 15;
const EDE_NO_REACHABLE_AUTHORITY = 22;
const EDE_PROHIBITED = 18;

export interface ResolverCounters {
  queries: number;
  blocked: number;
  cached: number;
  forwarded: number;
  refused: number;
  servfail: number;
  malformed: number;
  dropped: number;
}

export interface ResolverDeps {
  rules: RuleSet;
  cache: AnswerCache;
  forwarder: Forwarder;
  templates: SinkholeTemplates;
  log: Logger;
  blockedLog: BlockedQueryLog;
  /** Clients that may use this server; null = everyone. */
  allowNets: NetworkList | null;
  /** Clients never blocked. */
  exemptClients: NetworkList | null;
}

/** What happened to a query, for statistics and the query log. */
export type Outcome = 'blocked' | 'forwarded' | 'cached' | 'refused' | 'servfail';

/**
 * Told about every answered query, after the answer is sent. Called on the hot path: an
 * implementation must do little (count, sample) and build nothing it does not keep.
 * `rule` is for blocked queries: call `describeRule()` only when the details are needed.
 */
export interface QueryObserver {
  answered(q: Query, outcome: Outcome, rcode: number, upstream: string, describeRule: (() => RuleRef) | null): void;
}

/** Why a name is blocked: a name rule (number into the rule set) or an answer-IP rule. */
type Verdict = { kind: 'name'; rule: number; ownerOffset: number } | { kind: 'ip'; rule: number };

export class Resolver {
  /** Swapped whole on reload; read once per query. */
  rules: RuleSet;
  readonly counters: ResolverCounters = {
    queries: 0, blocked: 0, cached: 0, forwarded: 0, refused: 0, servfail: 0, malformed: 0, dropped: 0,
  };
  private readonly inflight = new Map<string, Query[]>();
  private readonly debug: boolean;
  /** Statistics and query log; null when nothing listens. */
  observer: QueryObserver | null = null;

  constructor(private readonly deps: ResolverDeps) {
    this.rules = deps.rules;
    this.debug = deps.log.isLevelEnabled('debug');
  }

  get pending(): number {
    return this.inflight.size;
  }

  handle(msg: Buffer, address: string, port: number, transport: Transport): void {
    const parsed = parseQuery(msg);
    if (parsed === DROP) {
      this.counters.dropped++;
      return;
    }
    if (!(parsed instanceof Query)) {
      this.counters.malformed++;
      transport.send(emptyAnswer(msg, parsed.questionEnd, parsed.rcode, false), address, port);
      return;
    }
    const q = parsed;
    q.clientAddress = address;
    q.clientPort = port;
    q.transport = transport;
    // Only the debug log and the query log read it; performance.now() is not free.
    if (this.debug || this.observer !== null) q.receivedAt = performance.now();
    this.counters.queries++;

    // Guard: who may ask, and what may be asked.
    if (this.deps.allowNets !== null && !this.deps.allowNets.contains(address)) {
      this.counters.refused++;
      this.reply(q, queryEmptyAnswer(q, RCODE.REFUSED, q.edns ? { code: EDE_PROHIBITED, text: 'client not allowed' } : undefined), 'refused');
      return;
    }
    if (q.qtype === QTYPE.AXFR || q.qtype === QTYPE.IXFR) {
      this.counters.refused++;
      this.reply(q, queryEmptyAnswer(q, RCODE.NOTIMP), 'refused');
      return;
    }

    // The DoH canary (policy/canary.ts).
    if (q.qnameKey === CANARY_KEY) {
      this.counters.blocked++;
      this.reply(q, queryEmptyAnswer(q, RCODE.NXDOMAIN), 'blocked');
      return;
    }

    // Policy: rules are checked before the cache, so a newly blocked name is blocked at once.
    const exempt = this.deps.exemptClients !== null && this.deps.exemptClients.contains(address);
    const rules = this.rules;
    if (!exempt) {
      const g = rules.match(q.qnameKey);
      if (g >= 0 && !rules.isAllow(g)) {
        this.block(q, rules, { kind: 'name', rule: g, ownerOffset: rules.matchOffset });
        return;
      }
    }

    // Cache.
    const hit = this.deps.cache.get(q.cacheKey);
    if (hit !== undefined) {
      const verdict = exempt ? null : this.responseVerdict(rules, hit);
      if (verdict !== null) {
        this.block(q, rules, verdict);
        return;
      }
      this.counters.cached++;
      this.reply(q, relayPacked(q, hit, Date.now(), transport.udp), 'cached');
      return;
    }

    // Forward, one upstream query for identical questions in flight at once.
    const waiting = this.inflight.get(q.cacheKey);
    if (waiting !== undefined) {
      waiting.push(q);
      return;
    }
    this.inflight.set(q.cacheKey, [q]);
    this.counters.forwarded++;
    this.deps.forwarder.forward(q, (result) => this.forwarded(q.cacheKey, result, q));
  }

  private forwarded(key: string, result: ForwardResult, first: Query): void {
    const waiters = this.inflight.get(key) ?? [first];
    this.inflight.delete(key);
    const { response, info } = result;
    // Stored when it may be cached (the cache decides: NOERROR, NXDOMAIN/NODATA with an SOA,
    // SERVFAIL briefly); packed either way, and relayed from that.
    const packed = response !== null && info !== null ? this.deps.cache.store(key, response, info) : null;
    if (!result.ok) {
      this.counters.servfail += waiters.length;
      this.deps.log.warn({ qname: keyToText(first.qnameKey), qtype: qtypeName(first.qtype), reason: result.failure },
        'upstream failure');
    } else if (this.debug) {
      this.deps.log.debug({ client: first.clientAddress, qname: keyToText(first.qnameKey), qtype: qtypeName(first.qtype),
        rcode: rcodeName(info!.rcode), upstream: result.upstream, ms: Math.round(performance.now() - first.receivedAt) }, 'forwarded');
    }
    const rules = this.rules;
    for (const q of waiters) {
      if (packed === null) {
        this.reply(q, queryEmptyAnswer(q, RCODE.SERVFAIL,
          q.edns ? { code: EDE_NO_REACHABLE_AUTHORITY, text: result.failure } : undefined), 'servfail', result.upstream);
        continue;
      }
      const exempt = this.deps.exemptClients !== null && this.deps.exemptClients.contains(q.clientAddress);
      const verdict = exempt ? null : this.responseVerdict(rules, packed);
      if (verdict !== null) {
        this.block(q, rules, verdict);
        continue;
      }
      this.reply(q, relayPacked(q, packed, Date.now(), q.transport!.udp), result.ok ? 'forwarded' : 'servfail', result.upstream);
    }
  }

  /** An answer is blocked when its CNAME chain passes through a blocked name or an address falls in an ip: rule. */
  private responseVerdict(rules: RuleSet, answer: PackedAnswer): Verdict | null {
    for (let i = 0, n = cnameCount(answer); i < n; i++) {
      const target = cnameTarget(answer, i);
      if (target === null) continue;
      const g = rules.match(target);
      if (g >= 0 && !rules.isAllow(g)) return { kind: 'name', rule: g, ownerOffset: 0 };
    }
    if (rules.ipRuleCount > 0) {
      for (let i = 0, n = addressCount(answer); i < n; i++) {
        const type = addressType(answer, i);
        const offset = addressOffset(answer, i);
        const length = addressLength(answer, i);
        const r = type === QTYPE.A || type === QTYPE.AAAA
          ? rules.matchAddress(answer, offset, length)
          : matchSvcbHints(rules, answer, offset, length);
        if (r >= 0) return { kind: 'ip', rule: r };
      }
    }
    return null;
  }

  private block(q: Query, rules: RuleSet, verdict: Verdict): void {
    this.counters.blocked++;
    const ref = (): RuleRef => (verdict.kind === 'name' ? rules.describe(verdict.rule) : rules.describeAddressRule(verdict.rule));
    const ede = q.edns ? { code: EDE_BLOCKED, text: edeText(ref()) } : undefined;
    this.reply(q, blockedAnswer(q, this.deps.templates, verdict.kind === 'name' ? verdict.ownerOffset : 0, ede), 'blocked', '', ref);
    this.deps.blockedLog.record(q.clientAddress, q.cacheKey, () => {
      const r = ref();
      return { client: q.clientAddress, qname: keyToText(q.qnameKey), qtype: qtypeName(q.qtype), rule: `${r.file}:${r.line}`, bundle: r.bundle };
    });
  }

  private reply(q: Query, answer: Buffer, outcome: Outcome, upstream = '', describeRule: (() => RuleRef) | null = null): void {
    q.transport!.send(answer, q.clientAddress, q.clientPort);
    if (this.observer !== null) this.observer.answered(q, outcome, answer[3]! & 0x0f, upstream, describeRule);
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

function edeText(ref: RuleRef): string {
  return `blocked by ${ref.rule} (${ref.file}:${ref.line}, bundle ${ref.bundle})`;
}
