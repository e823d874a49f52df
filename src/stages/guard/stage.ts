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
import { CANARY_KEY } from './canary.js';

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

  /** `allowNets` null: every client is answered (an open resolver). */
  constructor(readonly allowNets: NetworkList | null) {}

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    if (this.allowNets !== null && !this.allowNets.contains(q.clientAddress)) {
      this.refused++;
      // Never larger than the query (no amplification for spoofed sources): the EDE only
      // when the query's own EDNS options leave room for it.
      const ede = q.edns && q.msg.length >= q.questionEnd + OPT_LENGTH + EDE_LENGTH ? PROHIBITED : undefined;
      pipeline.reply(q, queryEmptyAnswer(q, RCODE.REFUSED, ede), 'refused');
      return ANSWERED;
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

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_guard_answered_total', 'counter', 'Queries the guard answered itself, by reason.',
      [[{ reason: 'not_allowed' }, this.refused], [{ reason: 'zone_transfer' }, this.transfers], [{ reason: 'doh_canary' }, this.canary]]);
  }
}
