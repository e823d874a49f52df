// Query statistics for /metrics and /api/stats: counts by outcome, query type and rcode,
// kept in typed arrays so that counting a query allocates nothing.
import type { Outcome, QueryObserver } from './resolver.js';
import type { Query } from './wire/query.js';

export const OUTCOMES: readonly Outcome[] = ['blocked', 'forwarded', 'cached', 'refused', 'servfail'];

export class QueryStats implements QueryObserver {
  readonly byOutcome = new Float64Array(OUTCOMES.length);
  /** Index = qtype for types below 256; 256 counts every other type. */
  readonly byType = new Float64Array(257);
  readonly byRcode = new Float64Array(16);
  readonly startedAt = Date.now();

  answered(q: Query, outcome: Outcome, rcode: number): void {
    this.byOutcome[OUTCOMES.indexOf(outcome)]!++;
    this.byType[q.qtype < 256 ? q.qtype : 256]!++;
    this.byRcode[rcode & 0x0f]!++;
  }
}
