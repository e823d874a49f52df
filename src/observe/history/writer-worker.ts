// The history worker thread: owns the HistoryWriter, takes the batches the observer puts in
// the shared ring (channel.ts) every POLL_MS, writes them in one transaction, keeps failed
// batches (bounded) and retries, and runs retention in small chunks. Writing 10,000 rows
// takes 14-20 ms (measured, docs/history.md): on the DNS thread that would hold up every
// query behind it, here it holds up nothing.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { Batch, RollupCell } from './batch.js';
import { BatchChannel } from './channel.js';
import { DB_FILE, HOUR_MS } from './schema.js';
import { HistoryWriter } from './writer.js';
import { writeFigures, type ToMain, type ToWorker, type WorkerData } from './messages.js';
import { lowerThisThreadPriority } from './thread-priority.js';

// DNS first (thread-priority.ts). Where the OS refuses, the writer runs as before: nothing to report.
lowerThisThreadPriority();

const settings = workerData as WorkerData;
const path = join(settings.stateDir, DB_FILE);
const port = parentPort!;
// Rare messages only (logs on errors, retention done, closed); batches and figures are shared memory.
const post = (m: ToMain): void => port.postMessage(m);
const channel = new BatchChannel(settings.channel);
const figures = new Float64Array(settings.figures);
/**
 * How often the ring is read. Polling, not a wake-up from the DNS thread: any wake-up across
 * threads (a message, Atomics.waitAsync) goes through a queue with a lock this thread can
 * hold while it is off the core. 20 reads a second cost nothing; a row waits at most this
 * long more before its transaction.
 */
const POLL_MS = 50;

let writer: HistoryWriter | null = null;
const pending: Batch[] = [];
let pendingRows = 0;
let received = 0;
let written = 0;
let dropped = 0;
let writeErrors = 0;
let failing = false;
let retryTimer: NodeJS.Timeout | null = null;
let retaining = false;

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const message = (e.message ?? String(err)).split('\n')[0]!;
  // Node's own errors begin with their code already ("ENOTDIR: not a directory, mkdir ...").
  return e.code === undefined || message.startsWith(e.code) ? message : `${e.code}: ${message}`;
}

/**
 * A batch arriving less than this after the last commit waits until then, and batches
 * arriving meanwhile share its transaction: at 20,000 blocked queries a second (a 2,048-row
 * hand-over every 100 ms) one commit per 500 ms instead of ten a second. At the usual rate
 * (one hand-over a second) every batch is written at once.
 */
const COMMIT_MS = 500;
/** At most this many batches in one transaction. */
const BATCHES_PER_COMMIT = 16;
let lastCommit = -Infinity;
let commitTimer: NodeJS.Timeout | null = null;

/** Batches kept while the database cannot be written: about ten minutes' worth. */
const MAX_PENDING_BATCHES = 600;

/** Sums cells of the same (hour, client, bundle, verdict). */
export function aggregate(cells: RollupCell[]): RollupCell[] {
  const sums = new Map<string, RollupCell>();
  for (const c of cells) {
    const key = `${c.hour}\0${c.client}\0${c.bundle}\0${c.verdict}`;
    const sum = sums.get(key);
    if (sum === undefined) sums.set(key, { ...c });
    else {
      sum.count += c.count;
      sum.first = Math.min(sum.first, c.first);
      sum.last = Math.max(sum.last, c.last);
    }
  }
  return [...sums.values()];
}

/** The raw rows of a batch that cannot be kept become roll-up counts: reports still count them. */
function foldRows(batch: Batch): void {
  const { rows } = batch;
  if (rows.n === 0) return;
  const cells = batch.rollups;
  for (let i = 0; i < rows.n; i++) {
    const at = rows.at[i]!;
    cells.push({ hour: Math.floor(at / HOUR_MS), client: batch.texts[rows.client[i]!]!, bundle: batch.texts[rows.bundle[i]!]!, verdict: rows.verdict[i]!, count: 1, first: at, last: at });
  }
  batch.rollups = aggregate(cells);
  dropped += rows.n;
  pendingRows -= rows.n;
  rows.n = 0;
}

/** Keeps what waits for the database bounded: raw rows past queueLimit, and batches past MAX_PENDING_BATCHES, become counts. */
function bound(): void {
  for (let i = 0; pendingRows > settings.queueLimit && i < pending.length - 1; i++) foldRows(pending[i]!);
  while (pending.length > MAX_PENDING_BATCHES) {
    const oldest = pending.shift()!;
    foldRows(oldest);
    const next = pending[0]!;
    next.rollups = aggregate([...oldest.rollups, ...next.rollups]);
    next.clients = { ...oldest.clients, ...next.clients };
  }
}

function flush(): void {
  try {
    if (writer === null) {
      mkdirSync(settings.stateDir, { recursive: true });
      writer = new HistoryWriter(path);
    } else if (failing) {
      // After a full disk: move the write-ahead log into the database and cut it to nothing,
      // so the next transaction has room.
      writer.db.pragma('wal_checkpoint(TRUNCATE)');
    }
    lastCommit = performance.now();
    // All waiting batches in one transaction (bounded, so a long backlog after a full disk is
    // written in steps).
    while (pending.length > 0) {
      const some = pending.slice(0, BATCHES_PER_COMMIT);
      written += writer.writeAll(some);
      pending.splice(0, some.length);
      pendingRows -= some.reduce((n, b) => n + b.rows.n, 0);
    }
    if (failing) {
      failing = false;
      post({ type: 'log', level: 'info', msg: `history: writing ${path} again (${dropped} raw rows dropped so far)` });
    }
  } catch (err) {
    writeErrors++;
    if (!failing) {
      failing = true;
      post({ type: 'log', level: 'warn', msg: `history: cannot write ${path} (${describe(err)}); DNS keeps answering, ` +
        `history retries every ${settings.retryMs >= 1000 ? `${Math.round(settings.retryMs / 1000)} s` : `${settings.retryMs} ms`}: check free space and permissions of --state-dir` });
    }
    if (retryTimer === null) retryTimer = setTimeout(() => {
      retryTimer = null;
      flush();
      report();
    }, settings.retryMs);
  }
}

/** Publishes the figures for the DNS thread, which reads them on its own timer. */
function report(): void {
  writeFigures(figures, { received, written, dropped, writeErrors, pendingRows, databaseBytes: writer?.sizeBytes() ?? 0 });
}

/** Deletes old rows one chunk at a time, letting batches in between. */
function retain(now: number): void {
  // Already running: its answer answers this request too.
  if (retaining) return;
  // No database opened yet (nothing written since start), or it cannot be written: nothing
  // deleted now; the next hourly run tries again. Answered, so that no caller waits forever.
  if (writer === null || failing) {
    post({ type: 'retained', deleted: 0 });
    return;
  }
  retaining = true;
  let deleted = 0;
  const step = (): void => {
    try {
      const n = writer === null ? 0 : writer.retainChunk(now, settings.days);
      deleted += n;
      if (n > 0) {
        setImmediate(step);
        return;
      }
    } catch (err) {
      writeErrors++;
      post({ type: 'log', level: 'warn', msg: `history: retention in ${path} failed (${describe(err)}); tried again at the next hour` });
    }
    retaining = false;
    post({ type: 'retained', deleted });
    report();
  };
  step();
}

/** Takes every batch in the ring; writes them now, or at the next commit time. */
function poll(): void {
  let took = false;
  for (let batch = channel.take(); batch !== null; batch = channel.take()) {
    pending.push(batch);
    pendingRows += batch.rows.n;
    received += batch.rows.n;
    took = true;
  }
  if (!took) return;
  bound();
  if (!failing && commitTimer === null) {
    const wait = lastCommit + COMMIT_MS - performance.now();
    if (wait <= 0) flush();
    else {
      commitTimer = setTimeout(() => {
        commitTimer = null;
        if (!failing) flush();
        report();
      }, wait);
    }
  }
  report();
}
const polling = setInterval(poll, POLL_MS);

port.on('message', (m: ToWorker) => {
  if (m.type === 'retain') {
    retain(m.now);
  } else if (m.type === 'close') {
    clearInterval(polling);
    // What the DNS thread put in the ring before it asked to close.
    poll();
    if (retryTimer !== null) clearTimeout(retryTimer);
    if (commitTimer !== null) clearTimeout(commitTimer);
    flush();
    report();
    writer?.close();
    writer = null;
    post({ type: 'closed' });
    port.close();
  }
});
