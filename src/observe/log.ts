// pino on stdout, written asynchronously, flushed on shutdown, and the blocked-query log
// that folds repeats so that a client hammering a blocked name cannot flood the log.
import pino from 'pino';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogOutput {
  log: Logger;
  /** Writes out whatever is buffered (on shutdown). */
  flush(): void;
  /** Re-opens the destination (SIGHUP, for logrotate when logging to a file). */
  reopen(): void;
}

export function createLogger(level: LogLevel, file?: string): LogOutput {
  const destination = pino.destination({ dest: file ?? 1, sync: false, minLength: 0, mkdir: file !== undefined });
  const log = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    log,
    flush: () => {
      try {
        destination.flushSync();
      } catch {
        // Nothing buffered, or stdout already gone: nothing left to save.
      }
    },
    reopen: () => {
      if (file !== undefined) destination.reopen();
    },
  };
}

export interface BlockedQuery {
  client: string;
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
export class BlockedQueryLog {
  /** Per client: its distinct blocked queries this interval, and how many went unlogged. */
  private readonly clients = new Map<string, { seen: Map<string, { query: BlockedQuery; repeats: number }>; suppressed: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly intervalMs = 1000, private readonly linesPerClient = 50) {}

  /** `describe` is called only when a line is written: building it is the expensive part. */
  record(client: string, key: string, describe: () => BlockedQuery): void {
    let c = this.clients.get(client);
    if (c === undefined) {
      c = { seen: new Map(), suppressed: 0 };
      this.clients.set(client, c);
    }
    const seen = c.seen.get(key);
    if (seen !== undefined) {
      seen.repeats++;
      return;
    }
    if (c.seen.size >= this.linesPerClient) {
      c.suppressed++;
      return;
    }
    const query = describe();
    c.seen.set(key, { query, repeats: 0 });
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
