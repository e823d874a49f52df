// A thread for GET /api/report and GET /api/attempts: a report over 90 days takes 0.02-0.8 s
// (4 s by domain for one client over 10 million rows), and the admin API runs on the thread
// that answers DNS.
import { parentPort, workerData } from 'node:worker_threads';
import { report, type ReportQuery } from './report.js';
import { openReader, type Db } from './schema.js';
import { searchAttempts, type SearchQuery } from './search.js';
import { lowerThisThreadPriority } from './thread-priority.js';

// DNS first (thread-priority.ts); where the OS refuses, reports run as before.
lowerThisThreadPriority();

const path = (workerData as { path: string }).path;
const port = parentPort!;
let db: Db | null = null;

export type ReportRequest = { id: number; kind: 'report'; query: ReportQuery } | { id: number; kind: 'attempts'; query: SearchQuery };

port.on('message', (m: ReportRequest) => {
  try {
    db ??= openReader(path);
    port.postMessage({ id: m.id, result: m.kind === 'report' ? report(db, m.query) : searchAttempts(db, m.query) });
  } catch (err) {
    db?.close();
    db = null;
    port.postMessage({ id: m.id, error: (err as Error).message.split('\n')[0] });
  }
});
