// The forward stage: the last one. Asks the upstreams (forwarder.ts: failover, retransmission,
// TCP on truncation, a bound on the wait) and hands the answer back through the pipeline.
// Names under a forward-zone go to that zone's upstreams (the most specific zone wins): the
// Active Directory domain to the domain controllers, a router's reverse zone to the router.
// Identical questions in flight at once share one upstream query; each waiting client then
// gets its own answer (its ID, its question's case, its own policy verdict).
import type { Logger } from '../../observe/log.js';
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { PENDING, type Stage, type StageResult } from '../../pipeline/stage.js';
import { queryEmptyAnswer } from '../../wire/answer.js';
import { RCODE, qtypeName, rcodeName } from '../../wire/constants.js';
import { keyToText } from '../../wire/names.js';
import { packAnswer } from '../../wire/packed-answer.js';
import type { Query } from '../../wire/query.js';
import type { ZoneMap } from '../../wire/zone-map.js';
import { FailureLog } from './failure-log.js';
import type { Forwarder, ForwardResult } from './forwarder.js';

const EDE_NO_REACHABLE_AUTHORITY = 22;

export class ForwardStage implements Stage {
  readonly name = 'forward';
  /** cache key -> the queries waiting for the one upstream query in flight. */
  private readonly inflight = new Map<string, Query[]>();
  private readonly debug: boolean;
  private readonly failures: FailureLog;

  /** `zones`: forward-zone name -> the Forwarder of its upstreams; null when there are none. */
  constructor(readonly forwarder: Forwarder, private readonly log: Logger, readonly zones: ZoneMap<Forwarder> | null = null) {
    this.debug = log.isLevelEnabled('debug');
    this.failures = new FailureLog(log);
  }

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    const waiting = this.inflight.get(q.cacheKey);
    if (waiting !== undefined) {
      waiting.push(q);
      return PENDING;
    }
    this.inflight.set(q.cacheKey, [q]);
    const zone = this.zones === null ? -1 : this.zones.match(q.qnameKey);
    const forwarder = zone < 0 ? this.forwarder : this.zones!.valueOf(zone);
    forwarder.forward(q, (result) => this.answered(q, result, pipeline));
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
    this.forwarder.collect(sink);
    for (const [, f] of this.zones?.entries() ?? []) f.collect(sink);
  }

  close(): void {
    this.failures.flush();
    this.forwarder.close();
    for (const [, f] of this.zones?.entries() ?? []) f.close();
  }
}
