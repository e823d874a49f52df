// QueryEvents for history tests, built the way the pipeline builds them: the query is parsed
// from real query bytes (wire/query.ts), the verdict comes from a real rule set loaded from
// list files, and one event object is reused for every query (as the pipeline does).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Outcome, QueryEvent } from '../../src/observe/event.js';
import { DB_FILE, openReader } from '../../src/observe/history/schema.js';
import { loadBlocklists } from '../../src/stages/policy/load.js';
import { ruleOf, type RuleRef, type RuleSet } from '../../src/stages/policy/ruleset.js';
import { parseQuery, Query } from '../../src/wire/query.js';
import { buildQuery } from './dns.js';

export const LISTS: Record<string, string> = {
  'whatsapp.txt': '# WhatsApp\nwhatsapp.net\nwhatsapp.com\n',
  'telegram.txt': 'telegram.org\n\nt.me\n',
  'icq.txt': 'icq.com\n',
};

export class TestEvent implements QueryEvent {
  query!: Query;
  outcome: Outcome = 'forwarded';
  rcode = 0;
  upstream = '';
  at = 0;
  /** The rule number that blocked the query, or -1 (as the policy stage reports it). */
  decision = -1;
  ref: RuleRef | null = null;
  latency = 0;
  rule(): RuleRef | null {
    return this.ref;
  }
  elapsedMs(): number {
    return this.latency;
  }
}

export interface EventSource {
  rules: RuleSet;
  dir: string;
  /** Fills and returns THE event (reused) for `client` asking `name`: blocked when a rule matches, else `otherwise`. */
  event(client: string, name: string, qtype: number, at: number, otherwise?: Outcome): TestEvent;
}

export async function eventSource(lists = LISTS): Promise<EventSource> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-hist-lists-'));
  for (const [file, text] of Object.entries(lists)) writeFileSync(join(dir, file), text);
  const rules = (await loadBlocklists(dir)).ruleSet;
  const e = new TestEvent();
  return {
    rules, dir,
    event(client, name, qtype, at, otherwise = 'forwarded') {
      const q = parseQuery(buildQuery(name, qtype));
      if (!(q instanceof Query)) throw new Error(`${name} did not parse as a query`);
      q.clientAddress = client;
      q.clientPort = 5353;
      e.query = q;
      const m = rules.match(q.qnameKey);
      const g = m < 0 ? -1 : ruleOf(m);
      const blocked = g >= 0 && !rules.isAllow(g);
      e.outcome = blocked ? 'blocked' : otherwise;
      e.ref = blocked ? rules.describe(g) : null;
      e.decision = blocked ? g : -1;
      e.rcode = otherwise === 'servfail' && !blocked ? 2 : 0;
      e.upstream = blocked || otherwise === 'cached' ? '' : '127.0.0.1:5300';
      e.at = at;
      e.latency = blocked ? 0.05 : 3.5;
      return e;
    },
  };
}

/** The rows of `sql` over the history database in `dir`, opened read-only for the one query. */
export function readRows<T>(dir: string, sql: string): T[] {
  const db = openReader(join(dir, DB_FILE));
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}
