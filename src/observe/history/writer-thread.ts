// The writer thread seen from the thread that owns it: hand it batches, ask for retention,
// read its figures, close it. One per database: with --workers N the primary owns it and
// the workers' History observers send it their batches (see docs/history.md).
import { Worker, type TransferListItem } from 'node:worker_threads';
import { rowColumns, type Batch } from './batch.js';
import type { ToMain, ToWorker, WorkerSettings, WriterStats } from './messages.js';

export interface HistoryLog {
  warn(msg: string): void;
  info(msg: string): void;
}

/** Where a History observer hands its batches: a WriterThread, or a link to the process that owns one. */
export interface BatchSink {
  write(batch: Batch): void;
  /**
   * Whether the writer holds more than half its queue unwritten (it cannot keep up): the
   * History then turns its rows into counts instead of handing them over (History.flush).
   * With --workers, the primary process tells each worker (serve.ts).
   */
  behind?(): boolean;
}

export class WriterThread implements BatchSink {
  stats: WriterStats = { received: 0, written: 0, dropped: 0, writeErrors: 0, pendingRows: 0, databaseBytes: 0 };
  /** Raw rows of every batch posted to the thread since start. */
  private handed = 0;
  /** Rows of batches that could not be handed to the thread (it failed to start or died). */
  lost = 0;
  private readonly worker: Worker;
  private gone = false;
  private closing: Promise<void> | null = null;
  private retained: ((deleted: number) => void)[] = [];
  private readonly retention: NodeJS.Timeout;

  /** Runs retention at start and every `retentionMs` (default hourly), with `now` as the clock. */
  constructor(private readonly settings: WorkerSettings, private readonly log: HistoryLog, private readonly now: () => number = Date.now, retentionMs = 3_600_000) {
    // Under the test runner the sources are .ts; built, they are .js.
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    this.worker = new Worker(new URL(`./writer-worker.${ext}`, import.meta.url), { workerData: settings });
    this.worker.on('message', (m: ToMain) => this.fromWorker(m));
    this.worker.on('error', (err) => log.warn(`history: the writer thread failed (${err.message.split('\n')[0]}); history is not written until restart, DNS keeps answering`));
    this.worker.on('exit', () => {
      this.gone = true;
      for (const resolve of this.retained.splice(0)) resolve(0);
    });
    // After the listeners (adding one refs the thread again): it must not keep the process alive.
    this.worker.unref();
    this.retention = setInterval(() => void this.retain(), retentionMs);
    this.retention.unref();
    void this.retain();
  }

  /**
   * Raw rows posted but not yet taken from the port by the thread. A thread starved of the
   * core (SCHED_IDLE while the DNS thread keeps it busy) reads no messages and reports no
   * figures: its own pendingRows then stays low while batches pile up unread, so they are
   * counted here, on this side.
   */
  inFlight(): number {
    return this.handed - this.stats.received;
  }

  /** Whether more than half the queue limit waits: in the thread, or posted and not yet read. */
  behind(): boolean {
    return this.stats.pendingRows + this.inFlight() > this.settings.queueLimit / 2;
  }

  /** The owner's figures, for the primary's metrics with --workers (see addHistoryMetrics). */
  figures(): { databaseBytes: number; queued: number; dropped: number; writeErrors: number; written: number } {
    const s = this.stats;
    return { databaseBytes: s.databaseBytes, queued: s.pendingRows + this.inFlight(), dropped: s.dropped + this.lost, writeErrors: s.writeErrors, written: s.written };
  }

  write(batch: Batch): void {
    const { rows } = batch;
    // Columns are moved, not copied, when each has a buffer of its own; a batch that came over
    // IPC from a --workers process has its columns in one shared buffer, which is copied.
    const columns = rowColumns(rows);
    const owned = columns.every((c) => c.byteOffset === 0 && c.byteLength === c.buffer.byteLength) &&
      new Set(columns.map((c) => c.buffer)).size === columns.length;
    this.post({ type: 'batch', batch }, owned ? columns.map((c) => c.buffer as ArrayBuffer) : [], rows.n);
  }

  /** Deletes what is older than retention allows, in small chunks; resolves with the rows and roll-ups deleted. */
  retain(): Promise<number> {
    return new Promise((resolve) => {
      if (this.gone || this.closing !== null) {
        resolve(0);
        return;
      }
      this.retained.push(resolve);
      // Someone waits for the answer: keep the process alive until it comes.
      this.worker.ref();
      this.post({ type: 'retain', now: this.now() }, [], 0);
    });
  }

  /** Writes what it holds and closes the database. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    clearInterval(this.retention);
    this.closing = new Promise((resolve) => {
      if (this.gone) {
        resolve();
        return;
      }
      this.worker.once('exit', () => resolve());
      this.worker.ref();
      this.post({ type: 'close' }, [], 0);
    });
    return this.closing;
  }

  private post(m: ToWorker, transfer: TransferListItem[], rows: number): void {
    if (this.gone) {
      this.lost += rows;
      return;
    }
    try {
      this.worker.postMessage(m, transfer);
      this.handed += rows;
    } catch (err) {
      this.log.warn(`history: cannot hand a batch to the writer thread (${(err as Error).message}); its rows are dropped`);
      this.lost += rows;
    }
  }

  private fromWorker(m: ToMain): void {
    if (m.type === 'stats') {
      const { received, written, dropped, writeErrors, pendingRows, databaseBytes } = m;
      this.stats = { received, written, dropped, writeErrors, pendingRows, databaseBytes };
    } else if (m.type === 'log') {
      if (m.level === 'warn') this.log.warn(m.msg);
      else this.log.info(m.msg);
    } else if (m.type === 'retained') {
      if (this.closing === null) this.worker.unref();
      for (const resolve of this.retained.splice(0)) resolve(m.deleted);
    }
  }
}
