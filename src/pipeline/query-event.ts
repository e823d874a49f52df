// The QueryEvent the pipeline fills for observers (observe/event.ts): one object, reused.
import type { Outcome, QueryEvent } from '../observe/event.js';
import type { RuleRef, RuleSource } from '../stages/policy/ruleset.js';
import type { Query } from '../wire/query.js';

/** Turns a decision number into the rule it names (the policy in force when it was made). */
export interface RuleExplainer {
  explain(decision: number): RuleRef | null;
  /** The same without the rule's text (see QueryEvent.ruleSource). */
  source?(decision: number): RuleSource | null;
}

export class PipelineEvent implements QueryEvent {
  query!: Query;
  outcome: Outcome = 'forwarded';
  rcode = 0;
  upstream = '';
  at = 0;
  decision = -1;
  private explainer: RuleExplainer | null = null;
  /**
   * rule() of this query, made once: the blocked-query log, the history and the fleet figures
   * all ask, and each answer builds an object and the rule's text.
   */
  private ruleMade = false;
  private ruleRef: RuleRef | null = null;
  /** ruleSource() of this query, made once too (the history and the statistics both ask). */
  private sourceMade = false;
  private sourceRef: RuleSource | null = null;

  set(q: Query, outcome: Outcome, rcode: number, upstream: string, decision: number, explainer: RuleExplainer | null, at = Date.now()): void {
    this.query = q;
    this.outcome = outcome;
    this.rcode = rcode;
    this.upstream = upstream;
    this.at = at;
    this.decision = decision;
    this.explainer = explainer;
    this.ruleMade = false;
    this.ruleRef = null;
    this.sourceMade = false;
    this.sourceRef = null;
  }

  /** Drops the references, so that the last query and rule set are not kept alive. */
  clear(): void {
    this.explainer = null;
    this.ruleMade = false;
    this.ruleRef = null;
    this.sourceMade = false;
    this.sourceRef = null;
  }

  rule(): RuleRef | null {
    if (!this.ruleMade) {
      this.ruleRef = this.explainer === null ? null : this.explainer.explain(this.decision);
      this.ruleMade = true;
    }
    return this.ruleRef;
  }

  ruleSource(): RuleSource | null {
    // Already described (another observer asked): no second look-up.
    if (this.ruleMade || this.explainer?.source === undefined) return this.rule();
    if (!this.sourceMade) {
      this.sourceRef = this.explainer.source(this.decision);
      this.sourceMade = true;
    }
    return this.sourceRef;
  }

  elapsedMs(): number {
    return this.query.receivedAt === 0 ? 0 : performance.now() - this.query.receivedAt;
  }
}
