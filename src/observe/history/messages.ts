// Messages between the History observer (DNS thread) and its writer thread.
import type { Batch } from './batch.js';

export interface WorkerSettings {
  stateDir: string;
  days: number;
  /** Raw rows the writer keeps while the database cannot be written; past it, only counts. */
  queueLimit: number;
  retryMs: number;
}

export type ToWorker =
  | { type: 'batch'; batch: Batch }
  | { type: 'retain'; now: number }
  | { type: 'close' };

export interface WriterStats {
  /** Raw rows of every batch the thread has taken from its port since start (see WriterThread.inFlight). */
  received: number;
  written: number;
  dropped: number;
  writeErrors: number;
  pendingRows: number;
  databaseBytes: number;
}

export type ToMain =
  | ({ type: 'stats' } & WriterStats)
  | { type: 'log'; level: 'warn' | 'info'; msg: string }
  | { type: 'retained'; deleted: number }
  | { type: 'closed' };
