// What observers (statistics, query log, blocked-query log, history) are told about each
// answered query: one QueryEvent, filled in by the pipeline after the answer is sent.
import type { RuleRef, RuleSource } from '../stages/policy/ruleset.js';
import type { Query } from '../wire/query.js';

/** What happened to a query. `local` = answered from local data (hosts files, local zones). */
export type Outcome = 'blocked' | 'forwarded' | 'cached' | 'refused' | 'servfail' | 'local';

export const OUTCOMES: readonly Outcome[] = ['blocked', 'forwarded', 'cached', 'refused', 'servfail', 'local'];

/**
 * One answered query. The pipeline reuses ONE event object for every query (nothing is
 * allocated per query for observers): an observer must copy what it keeps, and must not
 * hold on to the event or its `query` after `answered` returns.
 */
export interface QueryEvent {
  /** The parsed query: client address and port, qnameKey, qtype, cacheKey, receivedAt, transport. */
  readonly query: Query;
  readonly outcome: Outcome;
  /** The rcode sent to the client. */
  readonly rcode: number;
  /** The upstream that answered (forwarded, servfail), else ''. */
  readonly upstream: string;
  /** Date.now() when the answer was made and sent (read once per answer: a cache hit reads it before the lookup's expiry check). */
  readonly at: number;
  /** The policy's decision (stages/policy/policy.ts): -1 when no rule blocked the query. */
  readonly decision: number;
  /** The rule that blocked the query, described on demand (it builds strings); null when no rule did. */
  rule(): RuleRef | null;
  /**
   * Where that rule is (file, line, bundle) without its text: what the history stores for
   * every blocked query, cheaper than rule() (no string is built). Optional: without it,
   * rule() answers.
   */
  ruleSource?(): RuleSource | null;
  /** Milliseconds from arrival to answer; 0 when no one asked for timing (see Pipeline.timing). */
  elapsedMs(): number;
}

/** Told about every answered query, on the hot path: do little (count, sample, enqueue). */
export interface QueryObserver {
  answered(e: QueryEvent): void;
  /** True when this observer needs elapsedMs() (performance.now() per query is not free). */
  readonly wantsTiming?: boolean;
}
