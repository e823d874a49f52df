// GET /api/report: the same parameters as `sinkhole report` (since, until, by, client,
// bundle) and the same JSON; GET /api/attempts: single attempts, a page at a time
// (search.ts). The routes are added by the admin server; these are their handlers. Both run
// in a thread of their own (report-worker.ts), so that a long report never holds up DNS
// answers on the thread that serves the admin API.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseReportArgs, parseSearchArgs } from './report-args.js';
import type { ReportRequest } from './report-worker.js';
import { DB_FILE } from './schema.js';

export interface ApiResult {
  status: number;
  body: unknown;
}

export type ApiHandler = (params: URLSearchParams) => Promise<ApiResult>;

/** The handlers of /api/report and /api/attempts, reading `stateDir`/history.sqlite read-only, in one thread started on first use and kept. */
export function historyHandlers(stateDir: string, now: () => number = Date.now): { report: ApiHandler; attempts: ApiHandler } {
  const path = join(stateDir, DB_FILE);
  let worker: Worker | null = null;
  let nextId = 0;
  const pending = new Map<number, (r: ApiResult) => void>();
  const failAll = (why: string): void => {
    for (const resolve of pending.values()) resolve({ status: 503, body: { error: `cannot read ${path}: ${why}` } });
    pending.clear();
    worker = null;
  };
  const start = (): Worker => {
    // Under the test runner the sources are .ts; built, they are .js.
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const w = new Worker(new URL(`./report-worker.${ext}`, import.meta.url), { workerData: { path } });
    w.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const resolve = pending.get(m.id);
      pending.delete(m.id);
      if (pending.size === 0) w.unref();
      resolve?.(m.error === undefined ? { status: 200, body: m.result } : { status: 503, body: { error: `cannot read ${path}: ${m.error}` } });
    });
    w.on('error', (err) => failAll(err.message));
    w.on('exit', () => failAll('the report thread stopped'));
    // After the listeners: the thread must not keep the process alive.
    w.unref();
    return w;
  };
  const ask = (request: Omit<ReportRequest, 'id'>): Promise<ApiResult> => {
    if (!existsSync(path)) return Promise.resolve({ status: 503, body: { error: `no history yet at ${path} (is --history off?)` } });
    worker ??= start();
    const id = nextId++;
    const w = worker;
    return new Promise((resolve) => {
      // Kept alive while a report is being made, not after.
      w.ref();
      pending.set(id, resolve);
      w.postMessage({ id, ...request });
    });
  };
  const get = (params: URLSearchParams) => (name: string): string | undefined => params.get(name) ?? undefined;
  return {
    report: (params) => {
      const q = parseReportArgs(get(params), now(), '');
      return 'error' in q ? Promise.resolve({ status: 400, body: { error: q.error } }) : ask({ kind: 'report', query: q });
    },
    attempts: (params) => {
      const q = parseSearchArgs(get(params), now());
      return 'error' in q ? Promise.resolve({ status: 400, body: { error: q.error } }) : ask({ kind: 'attempts', query: q });
    },
  };
}
