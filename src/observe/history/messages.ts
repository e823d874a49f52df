// Messages between the History observer (DNS thread) and its writer thread.

export interface WorkerSettings {
  stateDir: string;
  days: number;
  /** Raw rows the writer keeps while the database cannot be written; past it, only counts. */
  queueLimit: number;
  retryMs: number;
}

/** What the thread starts with: the settings, the BatchChannel's ring (channel.ts) and its figures (FIGURES, a Float64 each). */
export interface WorkerData extends WorkerSettings {
  channel: SharedArrayBuffer;
  figures: SharedArrayBuffer;
}

// Batches and the thread's figures go through shared memory (channel.ts), never as messages:
// what is left is rare (retention hourly, logs on errors, close).
export type ToWorker =
  | { type: 'retain'; now: number }
  | { type: 'close' };

export interface WriterStats {
  /** Raw rows of every batch the thread has taken from the channel since start (see WriterThread.inFlight). */
  received: number;
  written: number;
  dropped: number;
  writeErrors: number;
  pendingRows: number;
  databaseBytes: number;
}

export type ToMain =
  | { type: 'log'; level: 'warn' | 'info'; msg: string }
  | { type: 'retained'; deleted: number }
  | { type: 'closed' };
