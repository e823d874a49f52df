// GET /api/report: the same parameters as `sinkhole report` (since, until, by, client,
// bundle) and the same JSON. The route is added by the admin server; this is its handler.
// The report runs in a thread of its own (report-worker.ts), so that a long one never holds
// up DNS answers on the thread that serves the admin API.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseReportArgs } from './report-args.js';
import type { Report } from './report.js';
import { DB_FILE } from './schema.js';

export interface ApiResult {
  status: number;
  body: unknown;
}

/** A handler reading `stateDir`/history.sqlite read-only, in a thread started on first use and kept. */
export function reportHandler(stateDir: string, now: () => number = Date.now): (params: URLSearchParams) => Promise<ApiResult> {
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
    w.on('message', (m: { id: number; report?: Report; error?: string }) => {
      const resolve = pending.get(m.id);
      pending.delete(m.id);
      if (pending.size === 0) w.unref();
      resolve?.(m.report !== undefined ? { status: 200, body: m.report } : { status: 503, body: { error: `cannot read ${path}: ${m.error}` } });
    });
    w.on('error', (err) => failAll(err.message));
    w.on('exit', () => failAll('the report thread stopped'));
    // After the listeners: the thread must not keep the process alive.
    w.unref();
    return w;
  };
  return (params) => {
    const q = parseReportArgs((name) => params.get(name) ?? undefined, now(), '');
    if ('error' in q) return Promise.resolve({ status: 400, body: { error: q.error } });
    if (!existsSync(path)) return Promise.resolve({ status: 503, body: { error: `no history yet at ${path} (is --history off?)` } });
    worker ??= start();
    const id = nextId++;
    const w = worker;
    return new Promise((resolve) => {
      // Kept alive while a report is being made, not after.
      w.ref();
      pending.set(id, resolve);
      w.postMessage({ id, query: q });
    });
  };
}
