// The History observer: told about every answered query on the DNS thread, it only copies
// a few fields into a bounded ring (blocked queries, or every query with --history all) or
// adds one to a per-client counter; about once a second it hands what it has to the writer
// thread, which stores it in history.sqlite. Nothing here waits for the disk or throws.
import { hostname } from 'node:os';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { Outcome, QueryEvent, QueryObserver } from '../event.js';
import { OUTCOMES } from '../event.js';
import { emptyRows, type Batch, type ClientInfo, type RollupCell, type Rows } from './batch.js';
import type { ToMain, ToWorker, WorkerSettings, WriterStats } from './messages.js';
import { BLOCKED, HOUR_MS } from './schema.js';

export type HistoryMode = 'blocked' | 'all' | 'off';
export const HISTORY_MODES: readonly HistoryMode[] = ['blocked', 'all', 'off'];

export interface HistoryOptions {
  /** blocked: a raw row per blocked query; all: a raw row per query. Roll-ups are kept in both. */
  mode: 'blocked' | 'all';
  /** Raw rows are kept this many days, hourly roll-ups twice as long. */
  days: number;
  /** Folder of history.sqlite (created if missing). */
  stateDir: string;
  /** Stored with every raw row; default: the host name. */
  node?: string;
  /** Raw rows waiting to be written, at most (default 100,000); past it the oldest become counts only. */
  queueLimit?: number;
  /** How often a batch is handed to the writer (default 1000 ms). */
  flushMs?: number;
  /** How often the writer retries after a write error (default 30 s). */
  retryMs?: number;
  /** How often retention runs (default hourly; also once at start). */
  retentionMs?: number;
  /** One line per problem, never per query. */
  log?: { warn(msg: string): void; info(msg: string): void };
  /** Clock for retention (tests move it); event times come from the events. */
  now?: () => number;
}

/** Figures for /metrics. */
export interface HistoryFigures {
  /** Bytes of history.sqlite and its WAL. */
  databaseBytes: number;
  /** Raw rows waiting: in the ring and in the writer. */
  queued: number;
  /** Raw rows dropped because the queue was full (their roll-up counts were kept). */
  dropped: number;
  writeErrors: number;
  /** Raw rows written since start. */
  written: number;
}

const VERDICT: Record<Outcome, number> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<Outcome, number>;

/** Queries of one client that get no raw row, counted per verdict for the current hour. */
interface ClientCounts {
  hour: number;
  count: Float64Array;
  first: Float64Array;
  last: Float64Array;
}

const UNKNOWN_CLIENT: ClientInfo = { name: '', group: 'default' };

export class History implements QueryObserver {
  readonly wantsTiming: boolean;
  /** Who a client is: set by whoever knows names (DHCP leases, hosts) and groups. */
  describeClient: (address: string) => ClientInfo = () => UNKNOWN_CLIENT;

  private readonly storeAll: boolean;
  private readonly capacity: number;
  private ring: Rows;
  private head = 0;
  private size = 0;
  private readonly counts = new Map<string, ClientCounts>();
  /** Roll-up cells of rows dropped from the ring, and of finished hours of `counts`. */
  private extra: RollupCell[] = [];
  private droppedHere = 0;
  private writer: WriterStats = { written: 0, dropped: 0, writeErrors: 0, pendingRows: 0, databaseBytes: 0 };
  private readonly worker: Worker;
  private workerGone = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly node: string;
  private readonly log: { warn(msg: string): void; info(msg: string): void };
  private readonly now: () => number;
  private closed: Promise<void> | null = null;
  private retained: ((deleted: number) => void)[] = [];

  constructor(options: HistoryOptions) {
    this.storeAll = options.mode === 'all';
    this.wantsTiming = this.storeAll;
    this.capacity = options.queueLimit ?? 100_000;
    this.ring = emptyRows(Math.min(this.capacity, 4096));
    this.node = options.node ?? hostname();
    this.log = options.log ?? { warn: (m) => process.stderr.write(`${m}\n`), info: () => undefined };
    this.now = options.now ?? Date.now;
    const settings: WorkerSettings = { stateDir: options.stateDir, days: options.days, queueLimit: this.capacity, retryMs: options.retryMs ?? 30_000 };
    // Under the test runner the sources are .ts; built, they are .js.
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    this.worker = new Worker(new URL(`./writer-worker.${ext}`, import.meta.url), { workerData: settings });
    this.worker.unref();
    this.worker.on('message', (m: ToMain) => this.fromWorker(m));
    this.worker.on('error', (err) => this.log.warn(`history: the writer thread failed (${err.message.split('\n')[0]}); history is not written until restart, DNS keeps answering`));
    this.worker.on('exit', () => {
      this.workerGone = true;
    });
    const flush = setInterval(() => this.flush(), options.flushMs ?? 1000);
    const retention = setInterval(() => void this.retain(), options.retentionMs ?? HOUR_MS);
    flush.unref();
    retention.unref();
    this.timers.push(flush, retention);
    this.post({ type: 'retain', now: this.now() });
  }

  answered(e: QueryEvent): void {
    const verdict = VERDICT[e.outcome];
    const q = e.query;
    if (verdict !== BLOCKED && !this.storeAll) {
      this.count(q.clientAddress, verdict, e.at);
      return;
    }
    if (this.size === this.ring.at.length) this.grow();
    let i = this.head + this.size;
    if (i >= this.ring.at.length) i -= this.ring.at.length;
    if (this.size === this.ring.at.length) {
      // Full: the oldest row keeps only its count.
      this.dropOldest();
      i = this.head + this.size;
      if (i >= this.ring.at.length) i -= this.ring.at.length;
    }
    const r = this.ring;
    r.at[i] = e.at;
    r.client[i] = q.clientAddress;
    r.qnameKey[i] = q.qnameKey;
    r.qtype[i] = q.qtype;
    r.verdict[i] = verdict;
    r.rcode[i] = e.rcode;
    r.upstream[i] = e.upstream;
    r.latencyMs[i] = this.storeAll ? e.elapsedMs() : NaN;
    const rule = verdict === BLOCKED ? e.rule() : null;
    r.bundle[i] = rule?.bundle ?? '';
    r.ruleFile[i] = rule?.file ?? '';
    r.ruleLine[i] = rule?.line ?? 0;
    this.size++;
  }

  private count(client: string, verdict: number, at: number): void {
    const hour = Math.floor(at / HOUR_MS);
    let c = this.counts.get(client);
    if (c === undefined) {
      c = { hour, count: new Float64Array(OUTCOMES.length), first: new Float64Array(OUTCOMES.length), last: new Float64Array(OUTCOMES.length) };
      this.counts.set(client, c);
    } else if (c.hour !== hour) {
      this.takeCounts(client, c);
      c.hour = hour;
    }
    if (c.count[verdict]++ === 0) c.first[verdict] = at;
    c.last[verdict] = at;
  }

  /** Moves a client's counts into `extra` and zeroes them. */
  private takeCounts(client: string, c: ClientCounts): void {
    for (let v = 0; v < OUTCOMES.length; v++) {
      if (c.count[v] === 0) continue;
      this.extra.push({ hour: c.hour, client, bundle: '', verdict: v, count: c.count[v]!, first: c.first[v]!, last: c.last[v]! });
      c.count[v] = 0;
    }
  }

  /** Doubles the ring up to the queue limit; it starts small so an idle server holds little. */
  private grow(): void {
    const length = this.ring.at.length;
    if (length >= this.capacity) return;
    const bigger = emptyRows(Math.min(this.capacity, length * 2));
    this.copyRows(bigger);
    this.ring = bigger;
    this.head = 0;
  }

  private dropOldest(): void {
    const r = this.ring;
    const i = this.head;
    const at = r.at[i]!;
    this.extra.push({ hour: Math.floor(at / HOUR_MS), client: r.client[i]!, bundle: r.bundle[i]!, verdict: r.verdict[i]!, count: 1, first: at, last: at });
    this.droppedHere++;
    this.head = i + 1 === r.at.length ? 0 : i + 1;
    this.size--;
  }

  /** Copies the ring's rows, oldest first, into `to` (which must have room). */
  private copyRows(to: Rows): void {
    const r = this.ring;
    for (let k = 0; k < this.size; k++) {
      let i = this.head + k;
      if (i >= r.at.length) i -= r.at.length;
      to.at[k] = r.at[i]!;
      to.client[k] = r.client[i]!;
      to.qnameKey[k] = r.qnameKey[i]!;
      to.qtype[k] = r.qtype[i]!;
      to.verdict[k] = r.verdict[i]!;
      to.rcode[k] = r.rcode[i]!;
      to.upstream[k] = r.upstream[i]!;
      to.latencyMs[k] = r.latencyMs[i]!;
      to.bundle[k] = r.bundle[i]!;
      to.ruleFile[k] = r.ruleFile[i]!;
      to.ruleLine[k] = r.ruleLine[i]!;
    }
    to.n = this.size;
  }

  /** Hands everything counted so far to the writer thread (called every flushMs, and by close). */
  flush(): void {
    for (const [client, c] of this.counts) {
      this.takeCounts(client, c);
      this.counts.delete(client);
    }
    if (this.size === 0 && this.extra.length === 0) return;
    const rows = emptyRows(this.size);
    this.copyRows(rows);
    this.head = 0;
    this.size = 0;
    const rollups = this.extra;
    this.extra = [];
    const clients: Record<string, ClientInfo> = {};
    const describe = (address: string): void => {
      if (clients[address] !== undefined) return;
      try {
        clients[address] = this.describeClient(address);
      } catch {
        clients[address] = UNKNOWN_CLIENT;
      }
    };
    for (let k = 0; k < rows.n; k++) describe(rows.client[k]!);
    for (const cell of rollups) describe(cell.client);
    const batch: Batch = { rows, rollups, clients, node: this.node };
    this.post({ type: 'batch', batch }, [rows.at, rows.qtype, rows.verdict, rows.rcode, rows.latencyMs, rows.ruleLine].map((a) => a.buffer as ArrayBuffer));
  }

  /** Runs retention now (it also runs hourly); resolves with the rows and roll-ups deleted. */
  retain(): Promise<number> {
    return new Promise((resolve) => {
      if (this.workerGone || this.closed !== null) {
        resolve(0);
        return;
      }
      this.retained.push(resolve);
      this.post({ type: 'retain', now: this.now() });
    });
  }

  collect(): HistoryFigures {
    return {
      databaseBytes: this.writer.databaseBytes,
      queued: this.size + this.writer.pendingRows,
      dropped: this.droppedHere + this.writer.dropped,
      writeErrors: this.writer.writeErrors,
      written: this.writer.written,
    };
  }

  /** Writes out everything queued and closes the database. */
  close(): Promise<void> {
    if (this.closed !== null) return this.closed;
    for (const t of this.timers) clearInterval(t);
    this.flush();
    this.closed = new Promise((resolve) => {
      if (this.workerGone) {
        resolve();
        return;
      }
      this.worker.once('exit', () => resolve());
      this.worker.ref();
      this.post({ type: 'close' });
    });
    return this.closed;
  }

  private post(m: ToWorker, transfer: TransferListItem[] = []): void {
    if (this.workerGone) {
      if (m.type === 'batch') this.droppedHere += m.batch.rows.n;
      return;
    }
    try {
      this.worker.postMessage(m, transfer);
    } catch (err) {
      this.log.warn(`history: cannot hand a batch to the writer thread (${(err as Error).message}); its rows are dropped`);
      if (m.type === 'batch') this.droppedHere += m.batch.rows.n;
    }
  }

  private fromWorker(m: ToMain): void {
    if (m.type === 'stats') {
      const { written, dropped, writeErrors, pendingRows, databaseBytes } = m;
      this.writer = { written, dropped, writeErrors, pendingRows, databaseBytes };
    } else if (m.type === 'log') {
      if (m.level === 'warn') this.log.warn(m.msg);
      else this.log.info(m.msg);
    } else if (m.type === 'retained') {
      for (const resolve of this.retained.splice(0)) resolve(m.deleted);
    }
  }
}

/** The observer for `--history MODE`, or null when MODE is off. */
export function createHistory(mode: HistoryMode, options: Omit<HistoryOptions, 'mode'>): History | null {
  return mode === 'off' ? null : new History({ ...options, mode });
}

export const DEFAULT_HISTORY_DAYS = 90;
export const DEFAULT_STATE_DIR = './state';

/** `--history` value -> mode, or null when it is not one. */
export function parseHistoryMode(text: string): HistoryMode | null {
  return (HISTORY_MODES as readonly string[]).includes(text) ? (text as HistoryMode) : null;
}
