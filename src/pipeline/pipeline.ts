// The query path: bytes from a listener -> parse -> each stage in order -> an answer to the
// client -> observers. Reading the stage list in src/main/serve.ts tells what the server does.
//
// A stage answers (ANSWERED), hands on (PASS), or takes the query to answer later (PENDING).
// An answer produced by a stage (a cache hit, an upstream answer) is given to `deliver`,
// which walks it back through the earlier stages' onAnswer and then relays it to the client.
// Answers stay bytes all the way: the client's ID and question are copied in, TTLs aged; the
// upstream's message is never decoded and re-encoded.
import type { Transport } from '../net/transport.js';
import type { Logger } from '../observe/log.js';
import type { Outcome, QueryObserver } from '../observe/event.js';
import { emptyAnswer } from '../wire/answer.js';
import { relayPacked, type PackedAnswer } from '../wire/packed-answer.js';
import { relayStale } from '../wire/stale-answer.js';
import { DROP, parseQuery, Query } from '../wire/query.js';
import { MetricsSink } from './metrics.js';
import { PipelineEvent, type RuleExplainer } from './query-event.js';
import { ANSWERED, PENDING, type Stage } from './stage.js';

export class Pipeline {
  /** Queries parsed, and packets that were not queries (dropped) or malformed (FORMERR/NOTIMP). */
  queries = 0;
  dropped = 0;
  malformed = 0;
  private handlerErrors = 0;
  private observers: QueryObserver[] = [];
  /** True when some observer (or the debug log) wants each query's elapsed time. */
  private timing: boolean;
  /** One event object for every answered query: observers copy what they keep. */
  private readonly event = new PipelineEvent();

  constructor(readonly stages: readonly Stage[], private readonly log: Logger) {
    if (stages.length === 0) throw new Error('a pipeline needs at least one stage');
    this.timing = log.isLevelEnabled('debug');
  }

  /** Observers are told about every answered query, after the answer is sent. */
  setObservers(observers: QueryObserver[]): void {
    this.observers = observers;
    this.timing = this.log.isLevelEnabled('debug') || observers.some((o) => o.wantsTiming === true);
  }

  /** The listeners' entry point. A packet must never take the server down. */
  handle(msg: Buffer, address: string, port: number, transport: Transport): void {
    try {
      this.run(msg, address, port, transport);
    } catch (err) {
      // Say so, but not once per packet.
      if (this.handlerErrors++ % 1000 === 0) this.log.error({ err: (err as Error).stack, client: address }, 'error while answering a query');
    }
  }

  private run(msg: Buffer, address: string, port: number, transport: Transport): void {
    const parsed = parseQuery(msg);
    if (parsed === DROP) {
      this.dropped++;
      transport.unanswered?.();
      return;
    }
    if (!(parsed instanceof Query)) {
      this.malformed++;
      transport.send(emptyAnswer(msg, parsed.questionEnd, parsed.rcode, false), address, port);
      return;
    }
    const q = parsed;
    q.clientAddress = address;
    q.clientPort = port;
    q.transport = transport;
    if (this.timing) q.receivedAt = performance.now();
    this.queries++;
    const stages = this.stages;
    for (let i = 0; i < stages.length; i++) {
      q.stage = i;
      const r = stages[i]!.onQuery(q, this);
      if (r === ANSWERED || r === PENDING) return;
    }
    throw new Error(`no stage answered ${q.qtype} query (the last stage must answer or take every query)`);
  }

  /**
   * An answer produced by the stage that has the query (q.stage): each earlier stage's
   * onAnswer sees it, last to first, and may answer instead (a blocked CNAME target); else it
   * is relayed to the client, aged (to `now`, Date.now() unless the caller has it) and fitted
   * to the transport.
   */
  deliver(q: Query, answer: PackedAnswer, outcome: Outcome, upstream: string, stale = false, now = Date.now()): void {
    const stages = this.stages;
    for (let i = q.stage - 1; i >= 0; i--) {
      const stage = stages[i]!;
      if (stage.onAnswer !== undefined && stage.onAnswer(q, answer, this) === ANSWERED) return;
    }
    // A stale answer (serve-stale, RFC 8767): TTLs 30 and EDE 3 "Stale Answer".
    const bytes = stale ? relayStale(q, answer, q.transport!.udp) : relayPacked(q, answer, now, q.transport!.udp);
    this.reply(q, bytes, outcome, upstream, -1, null, now);
  }

  /**
   * Sends `answer` to the client and tells the observers. `decision` and `explainer` say which
   * rule blocked the query (see stages/policy/policy.ts); they are described only on demand.
   * `now`: Date.now(), when the caller has read the clock for this answer already (a cache
   * hit reads it once for its expiry, its TTLs and the event, not three times).
   */
  reply(q: Query, answer: Buffer, outcome: Outcome, upstream = '', decision = -1, explainer: RuleExplainer | null = null, now = -1): void {
    q.transport!.send(answer, q.clientAddress, q.clientPort);
    const observers = this.observers;
    if (observers.length === 0) return;
    const e = this.event;
    e.set(q, outcome, answer[3]! & 0x0f, upstream, decision, explainer, now < 0 ? Date.now() : now);
    for (let i = 0; i < observers.length; i++) observers[i]!.answered(e);
    e.clear();
  }

  /** A stage decided to send nothing (a limit): the transport stops waiting for an answer. */
  drop(q: Query): void {
    q.transport!.unanswered?.();
  }

  /** Queries some stage holds and has not answered yet. */
  pending(): number {
    let n = 0;
    for (const s of this.stages) n += s.pending?.() ?? 0;
    return n;
  }

  collect(sink: MetricsSink): void {
    sink.add('sinkhole_packets_dropped_total', 'counter', 'Packets not answered or answered FORMERR/NOTIMP before parsing.',
      [[{ reason: 'malformed' }, this.malformed], [{ reason: 'not_a_query' }, this.dropped]]);
    for (const s of this.stages) s.collect?.(sink);
  }

  close(): void {
    for (const s of this.stages) s.close?.();
  }
}
