// GET /api/report: the same parameters as `sinkhole report` (since, until, by, client,
// bundle) and the same JSON. The route is added by the admin server; this is its handler.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseReportArgs } from './report-args.js';
import { report } from './report.js';
import { DB_FILE, openReader, type Db } from './schema.js';

export interface ApiResult {
  status: number;
  body: unknown;
}

/** A handler reading `stateDir`/history.sqlite read-only; the connection is opened on first use and kept. */
export function reportHandler(stateDir: string, now: () => number = Date.now): (params: URLSearchParams) => ApiResult {
  const path = join(stateDir, DB_FILE);
  let db: Db | null = null;
  return (params) => {
    const q = parseReportArgs((name) => params.get(name) ?? undefined, now(), '');
    if ('error' in q) return { status: 400, body: { error: q.error } };
    if (db === null) {
      if (!existsSync(path)) return { status: 503, body: { error: `no history yet at ${path} (is --history off?)` } };
      try {
        db = openReader(path);
      } catch (err) {
        return { status: 503, body: { error: `cannot read ${path}: ${(err as Error).message}` } };
      }
    }
    try {
      return { status: 200, body: report(db, q) };
    } catch (err) {
      db.close();
      db = null;
      return { status: 503, body: { error: `cannot read ${path}: ${(err as Error).message}` } };
    }
  };
}
