// The guard stage: who may ask, and what may be asked, before any other work. Clients outside
// allow-net get REFUSED (so the server is never an open resolver); zone transfers get
// NOTIMP; the DNS-over-HTTPS canary (canary.ts) gets NXDOMAIN.
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { ANSWERED, PASS, type Stage, type StageResult } from '../../pipeline/stage.js';
import { queryEmptyAnswer } from '../../wire/answer.js';
import { QTYPE, RCODE } from '../../wire/constants.js';
import type { Query } from '../../wire/query.js';
import type { NetworkList } from '../policy/cidr.js';
import type { Logger } from '../../observe/log.js';
import { CANARY_KEY } from './canary.js';
import { RATE_DROP, RATE_OK, type RateLimiter } from './rate-limit.js';

/** How often the rate limiter's findings are logged (one line, not one per query). */
const REPORT_EVERY_MS = 10_000;

/** EDE 18 (Prohibited), without text: refusals stay small. */
const PROHIBITED = { code: 18, text: '' };
/** Our bare OPT record, and an EDE option without text in it. */
const OPT_LENGTH = 11;
const EDE_LENGTH = 6;

export class GuardStage implements Stage {
  readonly name = 'guard';
  refused = 0;
  transfers = 0;
  canary = 0;

  rateDropped = 0;
  private reportTimer: NodeJS.Timeout | null = null;

  /**
   * `allowNets` null: every client is answered (an open resolver); swapped whole by a config
   * reload (read once per query). `limiter` null: no rate limits.
   */
  constructor(public allowNets: NetworkList | null, readonly limiter: RateLimiter | null = null, log: Logger | null = null) {
    if (limiter !== null && log !== null) {
      this.reportTimer = setInterval(() => {
        const r = limiter.report();
        if (r !== null) log.warn(r, `rate limit: ${r.limited} queries from ${r.clients} clients limited (${r.refused} refused, ${r.dropped} dropped), e.g. ${r.example}`);
      }, REPORT_EVERY_MS);
      this.reportTimer.unref();
    }
  }

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    if (this.allowNets !== null && !this.allowNets.contains(q.clientAddress)) {
      this.refused++;
      // Never larger than the query (no amplification for spoofed sources): the EDE only
      // when the query's own EDNS options leave room for it.
      const ede = q.edns && q.msg.length >= q.questionEnd + OPT_LENGTH + EDE_LENGTH ? PROHIBITED : undefined;
      pipeline.reply(q, queryEmptyAnswer(q, RCODE.REFUSED, ede), 'refused');
      return ANSWERED;
    }
    if (this.limiter !== null) {
      const verdict = this.limiter.take(q.clientAddress, performance.now());
      if (verdict !== RATE_OK) {
        // Past its rate a client gets a few small refusals a second, then silence: a flood
        // costs little, and other clients keep their answers.
        if (verdict === RATE_DROP) {
          this.rateDropped++;
          pipeline.drop(q);
          return ANSWERED;
        }
        this.refused++;
        pipeline.reply(q, queryEmptyAnswer(q, RCODE.REFUSED), 'refused');
        return ANSWERED;
      }
    }
    if (q.qtype === QTYPE.AXFR || q.qtype === QTYPE.IXFR) {
      this.transfers++;
      pipeline.reply(q, queryEmptyAnswer(q, RCODE.NOTIMP), 'refused');
      return ANSWERED;
    }
    if (q.qnameKey === CANARY_KEY) {
      this.canary++;
      pipeline.reply(q, queryEmptyAnswer(q, RCODE.NXDOMAIN), 'blocked');
      return ANSWERED;
    }
    return PASS;
  }

  close(): void {
    if (this.reportTimer !== null) clearInterval(this.reportTimer);
  }

  collect(sink: MetricsSink): void {
    const l = this.limiter;
    if (l !== null) {
      sink.add('sinkhole_ratelimited_total', 'counter', 'Queries over a client\'s rate or in-flight limit, by what was done.',
        [[{ reason: 'rate', action: 'refused' }, l.counters.rateRefused], [{ reason: 'rate', action: 'dropped' }, l.counters.rateDropped],
          [{ reason: 'inflight', action: 'refused' }, l.counters.inflightRefused], [{ reason: 'inflight', action: 'dropped' }, l.counters.inflightDropped]]);
      sink.add('sinkhole_inflight_queries', 'gauge', 'Queries waiting for an upstream now.', l.inflight);
      sink.add('sinkhole_ratelimit_evictions_total', 'counter',
        'Client addresses forgotten to make room for new ones (many distinct, perhaps spoofed, clients).', l.counters.evicted);
      sink.add('sinkhole_ratelimit_clients', 'gauge', 'Client addresses the rate limiter remembers now.', l.tracked);
    }
    sink.add('sinkhole_guard_answered_total', 'counter', 'Queries the guard answered itself, by reason.',
      [[{ reason: 'not_allowed' }, this.refused], [{ reason: 'zone_transfer' }, this.transfers], [{ reason: 'doh_canary' }, this.canary]]);
  }
}
