// Sends a query to the upstreams until one gives a usable answer. Starts with the upstream
// that answered last. A try not answered within the upstream's retransmission timeout (learnt
// from its round-trip times, RFC 6298 style, capped by --upstream-timeout) is sent again, to
// the next upstream or to the only one, while the earlier tries keep waiting: whichever good
// answer comes first wins. SERVFAIL, REFUSED, a malformed answer or an unreachable upstream
// (ECONNREFUSED, ENETUNREACH...: transports/udp.ts) moves on at once; a truncated UDP answer is asked again over TCP. The whole attempt is bounded (`budgetMs`), so
// a client always gets an answer within a few seconds. Upstreams may be plain (UDP, then TCP)
// or encrypted (DoT, DoH: transports/tls.ts, https.ts), mixed in one list: all get the same
// failover, retransmission timeout and bound.
import type { MetricsSink } from '../../pipeline/metrics.js';
import { RCODE, rcodeName } from '../../wire/constants.js';
import { inspectResponse, type ResponseInfo } from '../../wire/response.js';
import type { Query } from '../../wire/query.js';
import { EDNS_UDP_SIZE } from '../../wire/constants.js';
import type { Endpoint } from '../../net/endpoint.js';
import { tcpQuery } from './transports/tcp.js';
import { UdpUpstreamClient, type UdpWaiter } from './transports/udp.js';
import type { EncryptedTransport } from './transports/encrypted.js';

/** A plain upstream (an address, UDP with TCP on truncation) or an encrypted transport. */
export type UpstreamTarget = Endpoint | EncryptedTransport;

function isEncrypted(u: UpstreamTarget): u is EncryptedTransport {
  return 'exchange' in u;
}

export interface ForwardResult {
  /** The upstream's answer when one was usable (NOERROR/NXDOMAIN) or the last failure answer. */
  response: Buffer | null;
  info: ResponseInfo | null;
  /** True when `response` is a real answer, not a SERVFAIL/REFUSED or nothing. */
  ok: boolean;
  upstream: string;
  /** Why it failed, when it did: for the log. */
  failure: string;
  /** True when some upstream sent a well-formed answer, whatever its rcode: it is reachable. */
  reachable: boolean;
}

/** Upper bounds (ms) of the upstream latency histogram buckets; one more bucket holds the rest. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000] as const;

export interface UpstreamStats {
  queries: number;
  /** Tries not answered within the retransmission timeout (some are answered later). */
  timeouts: number;
  failures: number;
  latency: Uint32Array;
  latencySumMs: number;
}

export interface ForwarderOptions {
  upstreams: UpstreamTarget[];
  /** The longest wait for an answer before asking again; also the wait before any sample. */
  timeoutMs: number;
  /** Upper bound on the time spent for one query across every try. */
  budgetMs: number;
  /** The forward-zone these upstreams serve (a label on their metrics); absent for the default upstreams. */
  zone?: string;
  /** Queries one UDP source port carries (--upstream-port-reuse; default 1: a fresh port per query). */
  portReuse?: number;
}

/**
 * The shortest retransmission timeout. An upstream that usually answers in a millisecond or
 * two and has not answered in this long has almost surely lost the packet; shorter would
 * resend slow but live recursive lookups for nothing.
 */
export const MIN_RETRY_MS = 100;

/** Smoothed round-trip time and its variation (ms) of one upstream, RFC 6298. */
class RoundTrip {
  private srtt = -1;
  private rttvar = 0;

  sample(ms: number): void {
    if (this.srtt < 0) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
  }

  /** The wait before asking again; it doubles with each retry of the same query. */
  timeout(ceilingMs: number, retries: number): number {
    const base = this.srtt < 0 ? ceilingMs : Math.max(MIN_RETRY_MS, this.srtt + 4 * this.rttvar);
    return Math.min(ceilingMs, base * 2 ** retries);
  }
}

export class Forwarder {
  /** The UDP sockets of these upstreams (shared with this module's Attempt). */
  readonly udp: UdpUpstreamClient;
  /** Index of the upstream to try first: the one that answered last. */
  preferred = 0;
  readonly upstreams: UpstreamTarget[];
  /** Per upstream: Date.now() of its last good answer (0 = never). */
  readonly lastAnswerAt: number[];
  /** Per upstream: tries, timeouts, failed answers, and answer latency in LATENCY_BUCKETS_MS. */
  readonly stats: UpstreamStats[];
  readonly roundTrips: RoundTrip[];

  constructor(readonly options: ForwarderOptions, onError: (err: Error) => void) {
    this.upstreams = options.upstreams;
    this.lastAnswerAt = options.upstreams.map(() => 0);
    this.stats = options.upstreams.map(() => ({ queries: 0, timeouts: 0, failures: 0, latency: new Uint32Array(LATENCY_BUCKETS_MS.length + 1), latencySumMs: 0 }));
    this.roundTrips = options.upstreams.map(() => new RoundTrip());
    this.udp = new UdpUpstreamClient(onError, { portReuse: options.portReuse ?? 1 });
  }

  /** `budgetMs`: a shorter bound for this query (a stale answer is waiting to be sent instead). */
  forward(q: Query, done: (result: ForwardResult) => void, budgetMs = this.options.budgetMs): void {
    // Our own copy: its ID is rewritten for every try, and the client's bytes must stay as
    // they came (answers copy the client's header and question from them).
    const wire = Buffer.from(q.msg);
    // Ask upstreams for answers as large as we take; each client still gets what it can take.
    if (q.optOffset >= 0 && wire.readUInt16BE(q.optOffset) < EDNS_UDP_SIZE) wire.writeUInt16BE(EDNS_UDP_SIZE, q.optOffset);
    new Attempt(this, q, wire, Date.now() + Math.min(budgetMs, this.options.budgetMs), done).next();
  }

  /** After a failure, later queries start with the next upstream instead of waiting on this one. */
  demote(index: number): void {
    if (this.preferred === index) this.preferred = (index + 1) % this.upstreams.length;
  }

  /** Per upstream: tries, timeouts, failed answers, latency, and when it last answered; its UDP sockets. */
  collect(sink: MetricsSink): void {
    const zone = this.options.zone;
    const labelsOf = (label: string): Record<string, string> => (zone === undefined ? { upstream: label } : { upstream: label, zone });
    const per = (values: (i: number) => number): [Record<string, string>, number][] =>
      this.upstreams.map((u, i) => [labelsOf(u.label), values(i)]);
    sink.add('sinkhole_upstream_queries_total', 'counter', 'Queries sent to each upstream (every try).', per((i) => this.stats[i]!.queries));
    sink.add('sinkhole_upstream_timeouts_total', 'counter', 'Tries an upstream did not answer in time.', per((i) => this.stats[i]!.timeouts));
    sink.add('sinkhole_upstream_failures_total', 'counter', 'Answers with SERVFAIL, REFUSED or another failure rcode.', per((i) => this.stats[i]!.failures));
    sink.histogram('sinkhole_upstream_latency_seconds', 'Time from sending to an upstream to its answer.',
      this.upstreams.map((u, i) => ({ labels: labelsOf(u.label), counts: this.stats[i]!.latency, sum: this.stats[i]!.latencySumMs / 1000 })),
      LATENCY_BUCKETS_MS.map((ms) => ms / 1000));
    sink.add('sinkhole_upstream_last_answer_timestamp_seconds', 'gauge', 'When each upstream last gave a good answer (Unix time; 0 = never).',
      per((i) => this.lastAnswerAt[i]! / 1000), 'max');
    // The UDP sockets of this forwarder (one per query in flight, docs/limits.md): one sample per forwarder.
    const own: Record<string, string> = zone === undefined ? {} : { zone };
    const udp = this.udp;
    sink.add('sinkhole_upstream_udp_sockets', 'gauge', 'UDP sockets in use toward the upstreams now (one per query in flight, or fewer with --upstream-port-reuse; up to the cap).',
      [[own, udp.openSockets]]);
    sink.add('sinkhole_upstream_udp_spare_sockets', 'gauge', 'UDP sockets bound to random ports and waiting for a query (counted in the cap).',
      [[own, udp.spareSockets]]);
    sink.add('sinkhole_upstream_udp_sockets_on_demand_total', 'counter', 'Upstream UDP sockets opened on the query path because no spare was ready.',
      [[own, udp.counters.openedOnDemand]]);
    sink.add('sinkhole_upstream_udp_sockets_opened_total', 'counter', 'UDP sockets opened toward the upstreams (each on a random port).',
      [[own, udp.counters.socketsOpened]]);
    sink.add('sinkhole_upstream_udp_sockets_recycled_total', 'counter', 'Upstream UDP sockets made ready for another query on a new random port instead of closed (the batched-UDP addon).',
      [[own, udp.counters.socketsRecycled]]);
    sink.add('sinkhole_upstream_udp_shared_total', 'counter', 'Upstream queries that shared an open socket because of the socket cap.',
      [[own, udp.counters.shared]]);
  }

  close(): void {
    this.udp.close();
    for (const upstream of this.upstreams) if (isEncrypted(upstream)) upstream.close();
  }
}

/** `Attempt.tries`: per try, its upstream's index, when it was sent (Date.now()), its UDP handle (-1: none), and 1 once answered or failed. */
const TRY_WORDS = 4;

/**
 * One client query's way through the upstreams: its tries, what failed, and the end. One
 * object with its methods (and the UDP client's waiter) rather than about ten closures per
 * query and three per try: fewer objects to allocate and collect on every forwarded query
 * (W4 at saturation 3-10% faster; docs/performance.md, "The forwarder without closures").
 */
class Attempt implements UdpWaiter {
  /** With one upstream, ask it three times: a lost UDP packet should not cost the client an answer. */
  private readonly maxTries: number;
  private readonly start: number;
  /** TRY_WORDS numbers per try sent. */
  private readonly tries: number[] = [];
  /** Tries still waiting over TCP (a truncated answer asked again) and over TLS or HTTPS. */
  private waitingTcp = 0;
  private waitingStream = 0;
  private waitingUdp = 0;
  private settled = false;
  private lastFailure: Buffer | null = null;
  private lastInfo: ResponseInfo | null = null;
  private lastUpstream = '';
  private failure = 'no upstream answered';
  private reachable = false;

  constructor(private readonly f: Forwarder, private readonly q: Query, private readonly wire: Buffer, private readonly deadline: number,
    private readonly done: (result: ForwardResult) => void) {
    this.maxTries = Math.max(3, f.upstreams.length);
    this.start = f.preferred;
  }

  private finish(result: ForwardResult): void {
    if (this.settled) return;
    this.settled = true;
    const tries = this.tries;
    for (let h = 2; h < tries.length; h += TRY_WORDS) if (tries[h]! >= 0) this.f.udp.cancel(tries[h]!);
    this.done(result);
  }

  private giveUpIfIdle(): void {
    if (this.waitingUdp === 0 && this.waitingTcp === 0 && this.waitingStream === 0) {
      this.finish({ response: this.lastFailure, info: this.lastInfo, ok: false, upstream: this.lastUpstream, failure: this.failure, reachable: this.reachable });
    }
  }

  /** Sends the next try, to the next upstream in turn (or gives up when none is left in time). */
  next(): void {
    if (this.settled) return;
    const f = this.f;
    const upstreams = f.upstreams;
    const now = Date.now();
    const tryNo = this.tries.length / TRY_WORDS;
    if (tryNo >= this.maxTries || now >= this.deadline) {
      this.giveUpIfIdle();
      return;
    }
    const index = (this.start + tryNo) % upstreams.length;
    const upstream = upstreams[index]!;
    const retryAt = now + f.roundTrips[index]!.timeout(f.options.timeoutMs, Math.floor(tryNo / upstreams.length));
    this.tries.push(index, now, -1, 0);
    this.lastUpstream = upstream.label;
    f.stats[index]!.queries++;
    // A retry gets its own bytes: the earlier try's may still be queued for sending.
    const msg = tryNo === 0 ? this.wire : Buffer.from(this.wire);
    if (isEncrypted(upstream)) {
      this.sendEncrypted(upstream, tryNo, msg, Math.min(retryAt, this.deadline) - now);
      return;
    }
    const q = this.q;
    this.waitingUdp++;
    const handle = f.udp.sendTry(upstream, msg, q.qnameKey, q.qtype, q.qclass, this.deadline, this, tryNo, Math.min(retryAt, this.deadline));
    // A try that failed within sendTry (nothing sent: -1; or told at once) has nothing to cancel.
    if (handle >= 0 && this.tries[tryNo * TRY_WORDS + 3] === 0) this.tries[tryNo * TRY_WORDS + 2] = handle;
  }

  /** The UDP try `tryNo` was answered, or failed (null). */
  udpAnswer(tryNo: number, response: Buffer | null, why?: string): void {
    this.waitingUdp--;
    this.tries[tryNo * TRY_WORDS + 2] = -1;
    this.tries[tryNo * TRY_WORDS + 3] = 1;
    this.answered(tryNo, response, 0, why);
  }

  /** The UDP try `tryNo` had no answer within its retransmission timeout. */
  udpRetry(tryNo: number): void {
    this.askAgain(tryNo);
  }

  /** Try `tryNo` (UDP or encrypted) is slower than its upstream's retransmission timeout: ask the next upstream while it keeps waiting. */
  private askAgain(tryNo: number): void {
    const index = this.tries[tryNo * TRY_WORDS]!;
    this.f.stats[index]!.timeouts++;
    this.failure = `${this.f.upstreams[index]!.label} did not answer in time`;
    this.next();
  }

  /** Encrypted upstreams take a callback: a rare path (a connection carries many queries), kept as closures. */
  private sendEncrypted(upstream: EncryptedTransport, tryNo: number, msg: Buffer, retryInMs: number): void {
    // The connection is reliable, but an upstream slower than its usual round trip is
    // still asked to share the work: the next one is tried while this try keeps waiting.
    this.waitingStream++;
    let retryTimer: NodeJS.Timeout | null = setTimeout(() => {
      retryTimer = null;
      if (this.settled) return;
      this.askAgain(tryNo);
    }, Math.max(1, retryInMs));
    upstream.exchange(msg, this.q, this.deadline, (response, why) => {
      this.waitingStream--;
      if (retryTimer !== null) clearTimeout(retryTimer);
      retryTimer = null;
      this.answered(tryNo, response, 2, why);
    });
  }

  /** `via`: 0 UDP, 1 the TCP retry of a truncated answer, 2 an encrypted transport (`why`: its failure). */
  private answered(tryNo: number, response: Buffer | null, via: 0 | 1 | 2, why?: string): void {
    if (this.settled) return;
    const f = this.f;
    const index = this.tries[tryNo * TRY_WORDS]!;
    const upstream = f.upstreams[index]!;
    if (response === null) {
      // The deadline passed, the send failed, the TCP retry got nothing, or the upstream
      // is unreachable (UDP: said by the kernel at once, ICMP or routing table) or (DoT/DoH)
      // the connection failed: then `why` names the upstream and the reason, and the next
      // upstream is asked at once; later queries start with another one.
      this.failure = why !== undefined && why !== '' ? why : `${upstream.label} did not answer${via === 1 ? ' over TCP' : ''} in time`;
      if (why !== undefined && why !== '') f.demote(index);
      this.next();
      this.giveUpIfIdle();
      return;
    }
    const ms = Date.now() - this.tries[tryNo * TRY_WORDS + 1]!;
    if (via !== 1) f.roundTrips[index]!.sample(ms);
    const info = inspectResponse(response, this.q.questionEnd);
    if (info === null) {
      this.failure = `${upstream.label} sent a malformed answer`;
      f.demote(index);
      this.next();
      this.giveUpIfIdle();
      return;
    }
    if (info.truncated && via === 0 && !isEncrypted(upstream)) {
      this.waitingTcp++;
      const q = this.q;
      tcpQuery(upstream, this.wire, q.qnameKey, q.qtype, q.qclass, Math.max(1, this.deadline - Date.now()), (tcpResponse) => {
        this.waitingTcp--;
        this.answered(tryNo, tcpResponse, 1);
      });
      return;
    }
    const stats = f.stats[index]!;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[bucket]!) bucket++;
    stats.latency[bucket]!++;
    stats.latencySumMs += ms;
    this.reachable = true;
    if (info.rcode !== RCODE.NOERROR && info.rcode !== RCODE.NXDOMAIN) {
      stats.failures++;
      this.failure = `${upstream.label} answered ${rcodeName(info.rcode)}`;
      // Only an upstream's SERVFAIL is relayed (and cached briefly). Its REFUSED or NOTIMP
      // would read, to the client, as this server's own refusal (allow-net): those become
      // our SERVFAIL with the reason.
      if (info.rcode === RCODE.SERVFAIL) {
        this.lastFailure = response;
        this.lastInfo = info;
      }
      f.demote(index);
      this.next();
      this.giveUpIfIdle();
      return;
    }
    f.preferred = index;
    f.lastAnswerAt[index] = Date.now();
    this.finish({ response, info, ok: true, upstream: upstream.label, failure: '', reachable: true });
  }
}
