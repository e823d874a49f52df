// The cache stage: a query whose answer is in the store is answered from it (through the
// earlier stages' onAnswer, so that the policy still applies); an answer coming back from
// upstream is stored on its way to the client. Entries live for the answer's smallest TTL,
// clamped to [cache-min-ttl, cache-max-ttl]; negative answers for the SOA's negative TTL
// (RFC 2308); an upstream SERVFAIL for a few seconds at most.
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { ANSWERED, PASS, type Stage, type StageResult } from '../../pipeline/stage.js';
import { RCODE } from '../../wire/constants.js';
import { answerStart, clampPackedTtls, type PackedAnswer } from '../../wire/packed-answer.js';
import { staleSeconds } from '../../wire/stale-answer.js';
import type { Query } from '../../wire/query.js';
import { isNegative, type ResponseInfo } from '../../wire/response.js';
import type { AnswerCache } from './answer-cache.js';

export interface CacheOptions {
  minTtl: number;
  maxTtl: number;
  /** How long an upstream SERVFAIL is kept, in seconds. */
  servfailTtl: number;
  /** How long past its TTL an answer is kept to be served when the upstreams fail (RFC 8767); 0 = never. */
  staleMaxAge: number;
}

export class CacheStage implements Stage {
  readonly name = 'cache';

  constructor(readonly store: AnswerCache, private readonly options: CacheOptions) {}

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    const hit = this.store.get(q.cacheKey);
    if (hit === undefined) return PASS;
    // One clock reading for the expiry, the TTLs' age and the observers' event.
    const now = Date.now();
    if (this.options.staleMaxAge > 0 && isExpired(hit, now)) {
      // Ask the upstreams again; if they fail, the forward stage sends this instead.
      q.stale = hit;
      return PASS;
    }
    pipeline.deliver(q, hit, 'cached', '', false, now);
    return ANSWERED;
  }

  /** A fresh upstream answer (q.upstreamInfo set): clamp its TTLs, so that the first client sees what later ones will, and store it. */
  onAnswer(q: Query, answer: PackedAnswer): StageResult {
    const info = q.upstreamInfo;
    if (info === null) return PASS;
    const lifetime = this.lifetime(info);
    if (lifetime >= 0) clampPackedTtls(answer, this.options.minTtl, this.options.maxTtl);
    // A SERVFAIL must not push out an answer kept to be served stale.
    if (info.rcode === RCODE.SERVFAIL && q.stale !== null) return PASS;
    // Answers (not failures) are kept past their TTL, for serve-stale; isExpired tells them apart.
    const keep = info.rcode === RCODE.SERVFAIL ? lifetime : lifetime + this.options.staleMaxAge;
    if (lifetime > 0) this.store.put(q.cacheKey, answer, keep);
    return PASS;
  }

  /** Seconds an answer may be kept; -1 when it must not be cached at all. */
  private lifetime(info: ResponseInfo): number {
    const { minTtl, maxTtl, servfailTtl } = this.options;
    if (info.rcode === RCODE.SERVFAIL) return servfailTtl;
    if (isNegative(info)) {
      // Without an SOA there is no negative TTL to honour: do not cache (RFC 2308 section 5).
      if (info.negativeTtl < 0) return -1;
      return Math.min(Math.max(info.negativeTtl, minTtl), maxTtl);
    }
    if (info.rcode === RCODE.NOERROR) return Math.min(Math.max(info.minTtl, minTtl), maxTtl);
    return -1;
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_cache_hits_total', 'counter', 'Cache lookups that found an answer.', this.store.hits);
    sink.add('sinkhole_cache_misses_total', 'counter', 'Cache lookups that found none.', this.store.misses);
    sink.add('sinkhole_cache_entries', 'gauge', 'Answers in the cache.', this.store.size);
  }
}

/** Past its TTL (every record's TTL counts from when it was stored); a kept SERVFAIL never is. */
function isExpired(p: PackedAnswer, now: number): boolean {
  return (p[answerStart(p) + 3]! & 0x0f) !== RCODE.SERVFAIL && staleSeconds(p, now) > 0;
}
