// The forward stage: the last one. Asks the upstreams (forwarder.ts: failover, retransmission,
// TCP on truncation, a bound on the wait) and hands the answer back through the pipeline.
// Names under a forward-zone go to that zone's upstreams (the most specific zone wins): the
// Active Directory domain to the domain controllers, a router's reverse zone to the router.
// Identical questions in flight at once share one upstream query; each waiting client then
// gets its own answer (its ID, its question's case, its own policy verdict).
import type { Logger } from '../../observe/log.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { ANSWERED, PENDING, type Stage, type StageResult } from '../../pipeline/stage.js';
import { INFLIGHT_REFUSE, type RateLimiter } from '../guard/rate-limit.js';
import { queryEmptyAnswer } from '../../wire/answer.js';
import { RCODE, qtypeName, rcodeName } from '../../wire/constants.js';
import { keyToText } from '../../wire/names.js';
import { packAnswer } from '../../wire/packed-answer.js';
import type { Query } from '../../wire/query.js';
import type { ZoneMap } from '../../wire/zone-map.js';
import { FailureLog } from './failure-log.js';
import type { Forwarder, ForwardResult } from './forwarder.js';
import { SlotMap } from './slot-map.js';

const EDE_NO_REACHABLE_AUTHORITY = 22;
/** RFC 8767's "client response timer": 1.8 s, then the stale answer. */
export const STALE_WAIT_MS = 1800;

export class ForwardStage implements Stage {
  readonly name = 'forward';
  /** cache key -> the queries waiting for the one upstream query in flight (a SlotMap: see slot-map.ts for why not a Map). */
  private readonly inflight = new SlotMap<string, Query[]>();
  private readonly debug: boolean;
  private readonly failures: FailureLog;
  private staleAnswers = 0;

  /** `zones`: forward-zone name -> the Forwarder of its upstreams; null when there are none. */
  /** `limiter`: bounds the queries waiting upstream, per client and in all (memory stays bounded when an upstream is down). */
  /** `forwarder` is swapped whole by a config reload (new upstreams); a query in flight finishes on the one it started with. */
  constructor(public forwarder: Forwarder, private readonly log: Logger, readonly zones: ZoneMap<Forwarder> | null = null,
    private readonly limiter: RateLimiter | null = null) {
    this.debug = log.isLevelEnabled('debug');
    this.failures = new FailureLog(log);
  }

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    if (this.limiter !== null) {
      const ticket = this.limiter.enter(q.clientAddress, performance.now());
      if (ticket < 0) {
        if (ticket === INFLIGHT_REFUSE) pipeline.reply(q, queryEmptyAnswer(q, RCODE.REFUSED), 'refused');
        else pipeline.drop(q);
        return ANSWERED;
      }
      q.ticket = ticket;
    }
    const waiting = this.inflight.get(q.cacheKey);
    if (waiting !== undefined) {
      waiting.push(q);
      return PENDING;
    }
    this.inflight.set(q.cacheKey, [q]);
    const zone = this.zones === null ? -1 : this.zones.match(q.qnameKey);
    const forwarder = zone < 0 ? this.forwarder : this.zones!.valueOf(zone);
    // With a stale answer in hand, the client waits at most STALE_WAIT_MS for a fresh one.
    forwarder.forward(q, (result) => this.answered(q, result, pipeline), q.stale === null ? undefined : STALE_WAIT_MS);
    return PENDING;
  }

  private answered(first: Query, result: ForwardResult, pipeline: Pipeline): void {
    const key = first.cacheKey;
    const waiters = this.inflight.get(key) ?? [first];
    this.inflight.delete(key);
    const { response, info } = result;
    if (!result.ok) {
      this.failures.record(first, result.failure);
    } else if (this.debug) {
      this.log.debug({ client: first.clientAddress, qname: keyToText(first.qnameKey), qtype: qtypeName(first.qtype),
        rcode: rcodeName(info!.rcode), upstream: result.upstream, ms: Math.round(performance.now() - first.receivedAt) }, 'forwarded');
    }
    // An upstream's SERVFAIL is relayed (and cached briefly); no answer at all becomes our own SERVFAIL.
    const packed = response !== null && info !== null ? packAnswer(response, info, Date.now()) : null;
    const outcome = result.ok ? 'forwarded' : 'servfail';
    for (let i = 0; i < waiters.length; i++) {
      const q = waiters[i]!;
      this.limiter?.leave(q.ticket);
      q.ticket = -1;
      if (!result.ok && q.stale !== null) {
        // Serve-stale (RFC 8767): what the cache knew beats SERVFAIL.
        this.staleAnswers++;
        q.upstreamInfo = null;
        pipeline.deliver(q, q.stale, 'cached', '', true);
        continue;
      }
      if (packed === null) {
        pipeline.reply(q, queryEmptyAnswer(q, RCODE.SERVFAIL,
          q.edns ? { code: EDE_NO_REACHABLE_AUTHORITY, text: result.failure } : undefined), 'servfail', result.upstream);
        continue;
      }
      // Only the first waiter carries the fresh answer's details: the cache stores it once.
      q.upstreamInfo = i === 0 ? info : null;
      pipeline.deliver(q, packed, outcome, result.upstream);
    }
  }

  pending(): number {
    return this.inflight.size;
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_stale_answers_total', 'counter', 'Expired cached answers sent because no upstream answered (RFC 8767).', this.staleAnswers);
    this.forwarder.collect(sink);
    for (const [, f] of this.zones?.entries() ?? []) f.collect(sink);
  }

  close(): void {
    this.failures.flush();
    this.forwarder.close();
    for (const [, f] of this.zones?.entries() ?? []) f.close();
  }
}
