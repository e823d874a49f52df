// Sends a query to the upstreams until one gives a usable answer. Starts with the upstream
// that answered last; on a timeout, SERVFAIL, REFUSED or a malformed answer it moves on to
// the next; a truncated UDP answer is asked again over TCP. The whole attempt is bounded
// (`budgetMs`), so a client always gets an answer within a few seconds.
import { RCODE } from '../wire/constants.js';
import { inspectResponse, type ResponseInfo } from '../wire/response.js';
import type { Query } from '../wire/query.js';
import { EDNS_UDP_SIZE } from '../wire/constants.js';
import type { Endpoint } from './endpoint.js';
import { tcpQuery } from './tcp-client.js';
import { UdpUpstreamClient } from './udp-client.js';

export interface ForwardResult {
  /** The upstream's answer when one was usable (NOERROR/NXDOMAIN) or the last failure answer. */
  response: Buffer | null;
  info: ResponseInfo | null;
  /** True when `response` is a real answer, not a SERVFAIL/REFUSED or nothing. */
  ok: boolean;
  upstream: string;
  /** Why it failed, when it did: for the log. */
  failure: string;
}

/** Upper bounds (ms) of the upstream latency histogram buckets; one more bucket holds the rest. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000] as const;

export interface UpstreamStats {
  queries: number;
  timeouts: number;
  failures: number;
  latency: Uint32Array;
  latencySumMs: number;
}

export interface ForwarderOptions {
  upstreams: Endpoint[];
  timeoutMs: number;
  /** Upper bound on the time spent for one query across every try. */
  budgetMs: number;
}

export class Forwarder {
  private readonly udp: UdpUpstreamClient;
  /** Index of the upstream to try first: the one that answered last. */
  private preferred = 0;
  readonly upstreams: Endpoint[];
  /** Per upstream: Date.now() of its last good answer (0 = never). */
  readonly lastAnswerAt: number[];
  /** Per upstream: tries, timeouts, failed answers, and answer latency in LATENCY_BUCKETS_MS. */
  readonly stats: UpstreamStats[];

  constructor(private readonly options: ForwarderOptions, onError: (err: Error) => void) {
    this.upstreams = options.upstreams;
    this.lastAnswerAt = options.upstreams.map(() => 0);
    this.stats = options.upstreams.map(() => ({ queries: 0, timeouts: 0, failures: 0, latency: new Uint32Array(LATENCY_BUCKETS_MS.length + 1), latencySumMs: 0 }));
    this.udp = new UdpUpstreamClient(onError);
  }

  get inFlight(): number {
    return this.udp.inFlight;
  }

  forward(q: Query, done: (result: ForwardResult) => void): void {
    const { upstreams, timeoutMs } = this.options;
    const deadline = Date.now() + this.options.budgetMs;
    // With one upstream, ask it twice: a lost UDP packet should not cost the client an answer.
    const maxTries = Math.max(2, upstreams.length);
    // Our own copy: its ID is rewritten for every try, and the client's bytes must stay as
    // they came (answers copy the client's header and question from them).
    const wire = Buffer.from(q.msg);
    // Ask upstreams for answers as large as we take; each client still gets what it can take.
    if (q.optOffset >= 0 && wire.readUInt16BE(q.optOffset) < EDNS_UDP_SIZE) wire.writeUInt16BE(EDNS_UDP_SIZE, q.optOffset);
    const start = this.preferred;
    let tries = 0;
    let lastFailure: Buffer | null = null;
    let lastInfo: ResponseInfo | null = null;
    let lastUpstream = '';
    let failure = 'no upstream answered';

    const next = (): void => {
      const now = Date.now();
      if (tries >= maxTries || now >= deadline) {
        done({ response: lastFailure, info: lastInfo, ok: false, upstream: lastUpstream, failure });
        return;
      }
      const index = (start + tries) % upstreams.length;
      const upstream = upstreams[index]!;
      tries++;
      lastUpstream = upstream.label;
      const expiresAt = Math.min(deadline, now + timeoutMs);
      const stats = this.stats[index]!;
      stats.queries++;
      const onAnswer = (response: Buffer | null, viaTcp: boolean): void => {
        if (response === null) {
          stats.timeouts++;
          failure = `${upstream.label} did not answer${viaTcp ? ' over TCP' : ''} in time`;
          this.demote(index);
          next();
          return;
        }
        const info = inspectResponse(response, q.questionEnd);
        if (info === null) {
          failure = `${upstream.label} sent a malformed answer`;
          this.demote(index);
          next();
          return;
        }
        if (info.truncated && !viaTcp) {
          tcpQuery(upstream, wire, q.qnameKey, q.qtype, q.qclass, Math.max(1, deadline - Date.now()),
            (tcpResponse) => onAnswer(tcpResponse, true));
          return;
        }
        const ms = Date.now() - now;
        let bucket = 0;
        while (bucket < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[bucket]!) bucket++;
        stats.latency[bucket]!++;
        stats.latencySumMs += ms;
        if (info.rcode !== RCODE.NOERROR && info.rcode !== RCODE.NXDOMAIN) {
          stats.failures++;
          failure = `${upstream.label} answered ${info.rcode === RCODE.SERVFAIL ? 'SERVFAIL' : `rcode ${info.rcode}`}`;
          lastFailure = response;
          lastInfo = info;
          this.demote(index);
          next();
          return;
        }
        this.preferred = index;
        this.lastAnswerAt[index] = Date.now();
        done({ response, info, ok: true, upstream: upstream.label, failure: '' });
      };
      this.udp.send(upstream, wire, q.qnameKey, q.qtype, q.qclass, expiresAt, (response) => onAnswer(response, false));
    };
    next();
  }

  /** After a failure, later queries start with the next upstream instead of waiting on this one. */
  private demote(index: number): void {
    if (this.preferred === index) this.preferred = (index + 1) % this.upstreams.length;
  }

  close(): void {
    this.udp.close();
  }
}
