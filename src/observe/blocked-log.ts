// The blocked-query log: the "who tried what" lines in the server's log, folded so that a
// client retrying a blocked name every second does not flood the journal.
import type { ClientNameLookup } from './client-names.js';
import type { Logger } from './log.js';
import type { QueryEvent, QueryObserver } from './event.js';
import { qtypeName } from '../wire/constants.js';
import { keyToText } from '../wire/names.js';

export interface BlockedQuery {
  client: string;
  /** The client's name from client-names files, when known. */
  clientName?: string;
  qname: string;
  qtype: string;
  rule: string;
  bundle: string;
}

/**
 * One info line per blocked (client, name, type) per interval; repeats within the interval
 * are counted and reported in one line at its end. Past `linesPerClient` distinct lines in an
 * interval a client's further blocked queries are only counted, in one summary line.
 */
export class BlockedQueryLog implements QueryObserver {
  /** Per client: its distinct blocked queries this interval, and how many went unlogged. */
  private readonly clients = new Map<string, { seen: Map<string, { query: BlockedQuery; repeats: number }>; suppressed: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly intervalMs = 1000, private readonly linesPerClient = 50,
    private readonly names: ClientNameLookup | null = null) {}

  answered(e: QueryEvent): void {
    // Blocked by a rule (the DoH canary has none and is not an attempt to use a messenger).
    if (e.outcome !== 'blocked' || e.decision === -1) return;
    const q = e.query;
    if (!this.admit(q.clientAddress, q.cacheKey)) return;
    const r = e.rule()!;
    this.write(q.clientAddress, q.cacheKey,
      { client: q.clientAddress, clientName: this.names?.nameOf(q.clientAddress), qname: keyToText(q.qnameKey), qtype: qtypeName(q.qtype), rule: `${r.file}:${r.line}`, bundle: r.bundle });
  }

  /** `describe` is called only when a line is written: building it is the expensive part. */
  record(client: string, key: string, describe: () => BlockedQuery): void {
    if (this.admit(client, key)) this.write(client, key, describe());
  }

  /** Counts the attempt; true when it deserves a line of its own. */
  private admit(client: string, key: string): boolean {
    let c = this.clients.get(client);
    if (c === undefined) {
      c = { seen: new Map(), suppressed: 0 };
      this.clients.set(client, c);
    }
    const seen = c.seen.get(key);
    if (seen !== undefined) {
      seen.repeats++;
      return false;
    }
    if (c.seen.size >= this.linesPerClient) {
      c.suppressed++;
      return false;
    }
    return true;
  }

  private write(client: string, key: string, query: BlockedQuery): void {
    this.clients.get(client)!.seen.set(key, { query, repeats: 0 });
    this.log.info(query, 'blocked');
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const seconds = this.intervalMs / 1000;
    for (const c of this.clients.values()) {
      for (const { query, repeats } of c.seen.values()) {
        if (repeats > 0) this.log.info({ ...query, repeats, seconds }, 'blocked (repeated)');
      }
    }
    for (const [client, c] of this.clients) {
      if (c.suppressed > 0) {
        this.log.info({ client, suppressed: c.suppressed, seconds },
          'blocked (more queries from this client, not logged one by one)');
      }
    }
    this.clients.clear();
  }
}
