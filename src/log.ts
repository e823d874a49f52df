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
  private readonly seen = new Map<string, { query: BlockedQuery; repeats: number }>();
  private readonly perClient = new Map<string, { lines: number; suppressed: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly intervalMs = 1000, private readonly linesPerClient = 50) {}

  /** `describe` is called only when a line is written: building it is the expensive part. */
  record(client: string, key: string, describe: () => BlockedQuery): void {
    const dedupe = client + '\u0000' + key;
    const seen = this.seen.get(dedupe);
    if (seen !== undefined) {
      seen.repeats++;
      return;
    }
    let counts = this.perClient.get(client);
    if (counts === undefined) {
      counts = { lines: 0, suppressed: 0 };
      this.perClient.set(client, counts);
    }
    if (counts.lines >= this.linesPerClient) {
      counts.suppressed++;
      return;
    }
    counts.lines++;
    const query = describe();
    this.seen.set(dedupe, { query, repeats: 0 });
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
    for (const { query, repeats } of this.seen.values()) {
      if (repeats > 0) this.log.info({ ...query, repeats, seconds }, 'blocked (repeated)');
    }
    for (const [client, counts] of this.perClient) {
      if (counts.suppressed > 0) {
        this.log.info({ client, suppressed: counts.suppressed, seconds },
          'blocked (more queries from this client, not logged one by one)');
      }
    }
    this.seen.clear();
    this.perClient.clear();
  }
}
