// The local stage: queries answered from what this server knows itself, after the policy
// (blocking applies first) and before the cache and the upstreams. Today: ANY queries get a
// minimal answer (RFC 8482): an ANY answer is large, a favourite of reflection attacks, and
// no stub resolver needs one.
import type { Pipeline } from '../../pipeline/pipeline.js';
import type { MetricsSink } from '../../pipeline/metrics.js';
import { ANSWERED, PASS, type Stage, type StageResult } from '../../pipeline/stage.js';
import { minimalAnyAnswer } from '../../wire/answer.js';
import { QTYPE } from '../../wire/constants.js';
import type { Query } from '../../wire/query.js';

export type AnyQueries = 'minimal' | 'forward';

export class LocalStage implements Stage {
  readonly name = 'local';
  anyMinimal = 0;

  /** `anyQueries` 'forward' sends ANY on like any other type. */
  constructor(private readonly anyQueries: AnyQueries = 'minimal') {}

  onQuery(q: Query, pipeline: Pipeline): StageResult {
    if (q.qtype === QTYPE.ANY && this.anyQueries === 'minimal') {
      this.anyMinimal++;
      pipeline.reply(q, minimalAnyAnswer(q), 'local');
      return ANSWERED;
    }
    return PASS;
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_local_answers_total', 'counter', 'Queries answered from local data, by kind.', [[{ kind: 'any_minimal' }, this.anyMinimal]]);
  }
}
