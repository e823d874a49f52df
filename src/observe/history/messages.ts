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

/**
 * The writer thread's figures in shared memory (WorkerData.figures): one Float64 each, in
 * this order, written by the thread and read by the DNS thread, no message.
 */
const FIGURES = ['received', 'written', 'dropped', 'writeErrors', 'pendingRows', 'databaseBytes'] as const satisfies readonly (keyof WriterStats)[];
export const FIGURES_BYTES = FIGURES.length * Float64Array.BYTES_PER_ELEMENT;

export function readFigures(shared: Float64Array): WriterStats {
  const s = {} as WriterStats;
  FIGURES.forEach((name, i) => (s[name] = shared[i]!));
  return s;
}

/**
 * `received` goes last: the DNS thread counts rows as in flight until it says they were
 * taken, and then finds them in `pendingRows` (plain stores: at worst one reading of the
 * figures is a moment behind, which only delays shedding by one batch).
 */
export function writeFigures(shared: Float64Array, s: WriterStats): void {
  for (let i = FIGURES.length - 1; i >= 0; i--) shared[i] = s[FIGURES[i]!];
}

export type ToMain =
  | { type: 'log'; level: 'warn' | 'info'; msg: string }
  | { type: 'retained'; deleted: number }
  | { type: 'closed' };
