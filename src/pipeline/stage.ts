// The Stage interface: one job per stage (guard, policy, cache, forward, ...). The pipeline
// passes a query through the stages in order until one answers or takes it away to answer
// later; an answer found by a later stage (cache hit, upstream answer) travels back through
// the earlier stages' onAnswer, so that each can look at it (the policy stage checks CNAME
// chains and answer addresses there; the cache stage stores what came from upstream).
import type { PackedAnswer } from '../wire/packed-answer.js';
import type { Query } from '../wire/query.js';
import type { Pipeline } from './pipeline.js';
import type { MetricsSink } from './metrics.js';

/** The stage sent the answer (or a refusal): the query is done. */
export const ANSWERED = 0;
/** Not this stage's business: hand the query to the next stage. */
export const PASS = 1;
/** The stage took the query and will answer later through Pipeline.deliver or Pipeline.reply. */
export const PENDING = 2;
export type StageResult = typeof ANSWERED | typeof PASS | typeof PENDING;

export interface Stage {
  /** Short, lower-case: used in logs and metrics. */
  readonly name: string;
  /**
   * Called for every query that reached this stage. Runs on the hot path: allocate nothing
   * that is not needed, and never wait (no promise): answer now, pass, or take it (PENDING).
   */
  onQuery(q: Query, pipeline: Pipeline): StageResult;
  /**
   * Called, from the last stage back to the first, with an answer a later stage produced.
   * ANSWERED: this stage replied itself (e.g. the answer was blocked), and the answer goes no
   * further; PASS: hand it on towards the client.
   */
  onAnswer?(q: Query, answer: PackedAnswer, pipeline: Pipeline): StageResult;
  /** Adds this stage's figures to the admin API's metrics (see metrics.ts). */
  collect?(sink: MetricsSink): void;
  /** Queries this stage holds (PENDING) and has not answered yet: shutdown waits for them. */
  pending?(): number;
  /** Releases sockets and timers on shutdown. */
  close?(): void;
}
