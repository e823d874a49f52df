// The query log: one JSON line per query (time, client, clientName when known, name, type, verdict, rule, bundle,
// rcode, upstream, latency), to stdout or a file, reopened on SIGHUP for logrotate. On a
// busy network, "blocked" logs only blocked queries and "sample:N" one in N of the others
// (blocked queries are always logged).
import { closeSync, openSync } from 'node:fs';
import { ConfigError } from '../config/errors.js';
import type { ClientNameLookup } from './client-names.js';
import { createLogger, type Logger, type LogOutput } from './log.js';
import type { QueryEvent, QueryObserver } from './event.js';
import { qtypeName, rcodeName } from '../wire/constants.js';
import { keyToText } from '../wire/names.js';

export type QueryLogMode = { kind: 'all' } | { kind: 'blocked' } | { kind: 'sample'; every: number };

export class QueryLog implements QueryObserver {
  private readonly output: LogOutput;
  private seen = 0;
  readonly wantsTiming = true;
  /** Client names (client-names files): a line carries `clientName` when the client has one. */
  names: ClientNameLookup | null = null;

  /** `problems`: the server's log, told when the file cannot be written or reopened (else stderr). */
  /** Throws ConfigError when the file cannot be opened for appending (checked at start, once). */
  constructor(destination: string, private readonly mode: QueryLogMode, problems?: Logger) {
    if (destination !== 'stdout') {
      try {
        // Opened (and created) here first: a path that cannot be a log file stops startup with
        // one line, instead of "ready" and a failure later. Missing folders are not created.
        closeSync(openSync(destination, 'a'));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new ConfigError(`cannot open --query-log ${destination}: ${code}; give a file in an existing folder the server may write (or stdout, or off)`);
      }
    }
    this.output = createLogger('info', destination === 'stdout' ? undefined : destination,
      problems === undefined ? undefined : (message, fields) => problems.error(fields, message));
  }

  answered(e: QueryEvent): void {
    const { query: q, outcome, rcode, upstream } = e;
    if (outcome !== 'blocked') {
      if (this.mode.kind === 'blocked') return;
      if (this.mode.kind === 'sample' && ++this.seen % this.mode.every !== 0) return;
    }
    const rule = e.rule();
    this.output.log.info({
      client: q.clientAddress, clientName: this.names?.nameOf(q.clientAddress), name: keyToText(q.qnameKey), type: qtypeName(q.qtype), verdict: outcome === 'servfail' ? 'error' : outcome,
      rule: rule ? `${rule.file}:${rule.line}` : undefined, bundle: rule?.bundle, rcode: rcodeName(rcode), upstream: upstream || undefined,
      ms: Math.round(e.elapsedMs() * 100) / 100,
    });
  }

  reopen(): void {
    this.output.reopen();
  }

  flush(): void {
    this.output.flush();
  }
}

export function parseQueryLogMode(text: string): QueryLogMode | null {
  if (text === 'all') return { kind: 'all' };
  if (text === 'blocked') return { kind: 'blocked' };
  const m = /^sample:(\d+)$/.exec(text);
  return m && Number(m[1]) >= 1 ? { kind: 'sample', every: Number(m[1]) } : null;
}
