// The writer thread seen from the thread that owns it: hand it batches, ask for retention,
// read its figures, close it. One per database: with --workers N the primary owns it and
// the workers' History observers send it their batches (see docs/history.md).
// Batches and figures go through shared memory (channel.ts): the DNS thread never waits on a
// lock the low-priority writer thread may hold.
import { Worker } from 'node:worker_threads';
import type { Batch } from './batch.js';
import { BatchChannel } from './channel.js';
import { FIGURES_BYTES, readFigures, type ToMain, type ToWorker, type WorkerData, type WorkerSettings, type WriterStats } from './messages.js';

/** How often this side reads the thread's figures; between two reads they stay as they were. */
const FIGURES_MS = 100;
/**
 * The ring's size: room for the queue limit's rows twice over (a batch may take at most half
 * the ring), within these bounds. 8 MB holds 40,000 rows in each half: behind() turns rows
 * into counts before it fills.
 */
const MIN_RING_BYTES = 256 * 1024;
const MAX_RING_BYTES = 8 * 1024 * 1024;

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
  /** Rows of batches that could not be handed to the thread (it failed to start or died, or its ring was full). */
  lost = 0;
  /** Messages the thread sent this side (logs, retention done): rare, never one per batch. */
  messages = 0;
  private readonly worker: Worker;
  private readonly channel: BatchChannel;
  private readonly shared: Float64Array;
  private gone = false;
  private closing: Promise<void> | null = null;
  private retained: ((deleted: number) => void)[] = [];
  private readonly retention: NodeJS.Timeout;
  private readonly reading: NodeJS.Timeout;
  /** Set once a batch found no room in the ring: one warning per spell, not one per batch. */
  private full = false;

  /** Runs retention at start and every `retentionMs` (default hourly), with `now` as the clock. */
  constructor(private readonly settings: WorkerSettings, private readonly log: HistoryLog, private readonly now: () => number = Date.now, retentionMs = 3_600_000) {
    this.channel = new BatchChannel(Math.min(MAX_RING_BYTES, Math.max(MIN_RING_BYTES, 2 * settings.queueLimit * BatchChannel.bytesPerRow)));
    const figures = new SharedArrayBuffer(FIGURES_BYTES);
    this.shared = new Float64Array(figures);
    const workerData: WorkerData = { ...settings, channel: this.channel.shared, figures };
    // Under the test runner the sources are .ts; built, they are .js.
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    this.worker = new Worker(new URL(`./writer-worker.${ext}`, import.meta.url), { workerData });
    this.worker.on('message', (m: ToMain) => this.fromWorker(m));
    this.worker.on('error', (err) => log.warn(`history: the writer thread failed (${err.message.split('\n')[0]}); history is not written until restart, DNS keeps answering`));
    this.worker.on('exit', () => {
      this.gone = true;
      this.readFigures();
      clearInterval(this.reading);
      // Batches it never took are lost with it.
      this.lost += this.inFlight();
      this.handed = this.stats.received;
      for (const resolve of this.retained.splice(0)) resolve(0);
    });
    // After the listeners (adding one refs the thread again): it must not keep the process alive.
    this.worker.unref();
    this.reading = setInterval(() => this.readFigures(), FIGURES_MS);
    this.reading.unref();
    this.retention = setInterval(() => void this.retain(), retentionMs);
    this.retention.unref();
    void this.retain();
  }

  /**
   * Takes the thread's figures from shared memory. On a timer, not at each use: within one
   * turn of this thread they stay the same, as they did when they came as messages.
   */
  private readFigures(): void {
    this.stats = readFigures(this.shared);
  }

  /**
   * Raw rows put in the ring but not yet taken by the thread. A thread starved of the core
   * (SCHED_IDLE while the DNS thread keeps it busy) takes nothing: its own pendingRows then
   * stays low while batches pile up unread, so they are counted here, on this side.
   */
  inFlight(): number {
    return this.handed - this.stats.received;
  }

  /** Whether more than half the queue limit waits (in the thread, or not yet read), or the ring is more than half full. */
  behind(): boolean {
    return this.stats.pendingRows + this.inFlight() > this.settings.queueLimit / 2 || this.channel.used() > this.channel.capacity / 2;
  }

  /** The owner's figures, for the primary's metrics with --workers (see addHistoryMetrics). */
  figures(): { databaseBytes: number; queued: number; dropped: number; writeErrors: number; written: number } {
    const s = this.stats;
    return { databaseBytes: s.databaseBytes, queued: s.pendingRows + this.inFlight(), dropped: s.dropped + this.lost, writeErrors: s.writeErrors, written: s.written };
  }

  /** Copies a batch into the ring; the thread takes it at its next poll. */
  write(batch: Batch): void {
    const n = batch.rows.n;
    if (this.gone || this.closing !== null) {
      this.lost += n;
      return;
    }
    if (this.channel.put(batch)) {
      this.handed += n;
      this.full = false;
      return;
    }
    // behind() turns rows into counts well before the ring fills; a full ring means the thread
    // has not run for a long while (or one batch is larger than half the ring).
    this.lost += n;
    if (!this.full) this.log.warn(`history: the writer thread has not taken batches for a while (its ring of ${this.channel.capacity >> 20} MB is full); ${n} raw rows dropped, DNS keeps answering`);
    this.full = true;
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
      this.post({ type: 'retain', now: this.now() });
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
      this.post({ type: 'close' });
    });
    return this.closing;
  }

  private post(m: ToWorker): void {
    if (this.gone) return;
    try {
      this.worker.postMessage(m);
    } catch (err) {
      this.log.warn(`history: cannot ask the writer thread to ${m.type} (${(err as Error).message})`);
    }
  }

  private fromWorker(m: ToMain): void {
    this.messages++;
    if (m.type === 'log') {
      if (m.level === 'warn') this.log.warn(m.msg);
      else this.log.info(m.msg);
    } else if (m.type === 'retained') {
      if (this.closing === null) this.worker.unref();
      for (const resolve of this.retained.splice(0)) resolve(m.deleted);
    }
  }
}
