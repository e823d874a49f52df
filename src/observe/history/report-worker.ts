// A thread for GET /api/report: a report over 90 days takes 0.02-0.8 s (4 s by domain for
// one client over 10 million rows), and the admin API runs on the thread that answers DNS.
import { parentPort, workerData } from 'node:worker_threads';
import { report, type ReportQuery } from './report.js';
import { openReader, type Db } from './schema.js';

const path = (workerData as { path: string }).path;
const port = parentPort!;
let db: Db | null = null;

port.on('message', (m: { id: number; query: ReportQuery }) => {
  try {
    db ??= openReader(path);
    port.postMessage({ id: m.id, report: report(db, m.query) });
  } catch (err) {
    db?.close();
    db = null;
    port.postMessage({ id: m.id, error: (err as Error).message.split('\n')[0] });
  }
});
