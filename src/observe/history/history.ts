// The History observer: told about every answered query on the DNS thread, it only copies
// a few fields as numbers and bytes into a bounded ring (blocked queries, or every query
// with --history all; no string of a query is kept, see batch.ts) or
// adds one to a per-client counter (typed arrays, nothing allocated); about once a second it
// hands what it has to the writer thread, which stores it in history.sqlite. Nothing here
// waits for the disk or throws.
import { hostname } from 'node:os';
import type { Outcome, QueryEvent, QueryObserver } from '../event.js';
import type { RuleSource } from '../../stages/policy/ruleset.js';
import { OUTCOMES } from '../event.js';
import { emptyRows, LONG_NAME, NAME_SLOT, setQnameFromMessage, Texts, type ClientInfo, type RollupCell, type Rows } from './batch.js';
import type { WorkerSettings } from './messages.js';
import { WriterThread, type BatchSink, type HistoryLog } from './writer-thread.js';
import { BLOCKED, CANARY, HOUR_MS, VERDICT_NAMES } from './schema.js';
import type { MetricsSink } from '../../pipeline/metrics.js';

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
  /**
   * Raw rows waiting to be written, at most (default 100,000); past it the oldest become counts
   * only. While the writer holds more than half of it, new rows become counts at once (shedRows).
   */
  queueLimit?: number;
  /** How often a batch is handed to the writer (default 1000 ms). */
  flushMs?: number;
  /** How often the writer retries after a write error (default 30 s). */
  retryMs?: number;
  /** How often retention runs (default hourly; also once at start). */
  retentionMs?: number;
  /** One line per problem, never per query. */
  log?: HistoryLog;
  /**
   * Where batches go instead of a writer thread of this History's own: with --workers N,
   * a link to the primary, which owns the one WriterThread. Retention and the database
   * figures are then the owner's business.
   */
  sink?: BatchSink;
  /** Clock for retention (tests move it); event times come from the events. */
  now?: () => number;
}

/** Figures for /metrics (see addHistoryMetrics). */
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

/** Verdicts: the roll-up counts hold one cell per (client, verdict). */
const V = VERDICT_NAMES.length;
/**
 * Clients with an id for counting, at most; past it the ids are forgotten at the next
 * hand-over (a scan from many addresses must not grow memory without end).
 */
const COUNTED_CLIENTS = 16_384;

const UNKNOWN_CLIENT: ClientInfo = { name: '', group: 'default' };

/**
 * A batch is handed over early once it has this many rows: handing over costs the DNS thread
 * about 0.2-0.3 ms per 1,000 rows (copying the ring's columns into a batch, and the batch into
 * the ring shared with the writer thread, channel.ts), so batches stay small enough that no
 * single hand-over holds up queries for long (figures in docs/history.md).
 */
export const EARLY_FLUSH_ROWS = 2048;

export class History implements QueryObserver {
  readonly wantsTiming: boolean;
  /** Who a client is: set by whoever knows names (DHCP leases, hosts) and groups. */
  describeClient: (address: string) => ClientInfo = () => UNKNOWN_CLIENT;

  private readonly storeAll: boolean;
  private readonly capacity: number;
  /**
   * Rows waiting, oldest at `head` (a ring: when full, the oldest becomes a count). The same
   * columns as a batch, so a hand-over is a copy of each column.
   */
  private ring: Rows;
  private head = 0;
  private size = 0;
  /** Texts of the rows in the ring (client addresses, bundles, rule files, upstreams), by index: a new set per hand-over. */
  private texts = new Texts();
  /**
   * The last rule's file and bundle and their ids in `texts`: blocked queries mostly come
   * from a few files in a row, so most rows skip two Map look-ups. Forgotten at each take().
   */
  private lastRuleFile = '';
  private lastRuleBundle = '';
  private lastRuleFileId = 0;
  private lastRuleBundleId = 0;
  /**
   * Roll-up counts of queries without a raw row, for the current hour: a small integer id
   * per client address, and cell id * V + verdict in flat typed arrays. On the DNS thread
   * that is one Map lookup and a few array stores per query, nothing allocated.
   */
  private readonly clientIds = new Map<string, number>();
  private clientOf: string[] = [];
  private cellCount = new Float64Array(64 * V);
  private cellFirst = new Float64Array(64 * V);
  private cellLast = new Float64Array(64 * V);
  /** Cells counted since the last hand-over, each once. */
  private touched = new Int32Array(64 * V);
  private touchedN = 0;
  private countHour = 0;
  private hourStart = 0;
  private hourEnd = 0;
  /** Roll-up cells of rows dropped from the ring, and of finished hours of `counts`. */
  private extra: RollupCell[] = [];
  private droppedHere = 0;
  /** The writer thread, when this History owns it (no `sink` given). */
  readonly thread: WriterThread | null;
  private readonly sink: BatchSink;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly node: string;
  private readonly log: HistoryLog;
  private readonly now: () => number;
  private closed: Promise<void> | null = null;
  private flushSoon = false;
  private sinkFailed = false;
  private readonly flushNow = (): void => this.flush();

  constructor(options: HistoryOptions) {
    this.storeAll = options.mode === 'all';
    this.wantsTiming = this.storeAll;
    this.capacity = options.queueLimit ?? 100_000;
    this.ring = emptyRows(Math.min(this.capacity, 4096));
    this.node = options.node ?? hostname();
    this.log = options.log ?? { warn: (m) => process.stderr.write(`${m}\n`), info: () => undefined };
    this.now = options.now ?? Date.now;
    const flush = setInterval(() => this.flush(), options.flushMs ?? 1000);
    flush.unref();
    this.timers.push(flush);
    if (options.sink !== undefined) {
      this.thread = null;
      this.sink = options.sink;
      return;
    }
    const settings: WorkerSettings = { stateDir: options.stateDir, days: options.days, queueLimit: this.capacity, retryMs: options.retryMs ?? 30_000 };
    this.thread = new WriterThread(settings, this.log, this.now, options.retentionMs);
    this.sink = this.thread;
  }

  answered(e: QueryEvent): void {
    let verdict = VERDICT[e.outcome];
    let rule: RuleSource | null = null;
    if (verdict === BLOCKED) {
      // Where the rule is; its text (which rule() builds) is not stored.
      rule = e.ruleSource === undefined ? e.rule() : e.ruleSource();
      // Blocked without a rule: the DoH canary, counted apart (not a client's attempt).
      if (rule === null) verdict = CANARY;
    }
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
    const texts = this.texts;
    r.at[i] = e.at;
    r.client[i] = texts.id(q.clientAddress);
    // The qname's bytes, not the string: nothing per query stays reachable until the hand-over.
    setQnameFromMessage(r, i, q.msg, q.qnameKey);
    r.qtype[i] = q.qtype;
    r.verdict[i] = verdict;
    r.rcode[i] = e.rcode;
    r.upstream[i] = e.upstream === '' ? 0 : texts.id(e.upstream);
    r.latencyMs[i] = this.storeAll ? e.elapsedMs() : NaN;
    if (rule === null) {
      r.bundle[i] = 0;
      r.ruleFile[i] = 0;
      r.ruleLine[i] = 0;
    } else {
      if (rule.file !== this.lastRuleFile || rule.bundle !== this.lastRuleBundle) {
        this.lastRuleFile = rule.file;
        this.lastRuleBundle = rule.bundle;
        this.lastRuleFileId = texts.id(rule.file);
        this.lastRuleBundleId = texts.id(rule.bundle);
      }
      r.bundle[i] = this.lastRuleBundleId;
      r.ruleFile[i] = this.lastRuleFileId;
      r.ruleLine[i] = rule.line;
    }
    if (++this.size === EARLY_FLUSH_ROWS && !this.flushSoon) {
      this.flushSoon = true;
      setImmediate(this.flushNow);
    }
  }

  private count(client: string, verdict: number, at: number): void {
    if (at >= this.hourEnd || at < this.hourStart) this.newHour(at);
    let id = this.clientIds.get(client);
    if (id === undefined) id = this.addClient(client);
    const k = id * V + verdict;
    if (this.cellCount[k]++ === 0) {
      this.cellFirst[k] = at;
      this.touched[this.touchedN++] = k;
    }
    this.cellLast[k] = at;
  }

  /** Counts from here on are for the hour of `at`: the cells of the previous one are handed on. */
  private newHour(at: number): void {
    this.takeCounts();
    this.countHour = Math.floor(at / HOUR_MS);
    this.hourStart = this.countHour * HOUR_MS;
    this.hourEnd = this.hourStart + HOUR_MS;
  }

  private addClient(client: string): number {
    const id = this.clientOf.length;
    if ((id + 1) * V > this.cellCount.length) {
      const grow = <A extends Float64Array | Int32Array>(a: A, make: (n: number) => A): A => {
        const bigger = make(a.length * 2);
        bigger.set(a);
        return bigger;
      };
      this.cellCount = grow(this.cellCount, (n) => new Float64Array(n));
      this.cellFirst = grow(this.cellFirst, (n) => new Float64Array(n));
      this.cellLast = grow(this.cellLast, (n) => new Float64Array(n));
      this.touched = grow(this.touched, (n) => new Int32Array(n));
    }
    this.clientIds.set(client, id);
    this.clientOf.push(client);
    return id;
  }

  /** Moves the counted cells into `extra` as roll-up cells of the current hour and zeroes them. */
  private takeCounts(): void {
    for (let j = 0; j < this.touchedN; j++) {
      const k = this.touched[j]!;
      this.extra.push({ hour: this.countHour, client: this.clientOf[(k / V) | 0]!, bundle: '', verdict: k % V, count: this.cellCount[k]!, first: this.cellFirst[k]!, last: this.cellLast[k]! });
      this.cellCount[k] = 0;
    }
    this.touchedN = 0;
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
    this.extra.push({ hour: Math.floor(at / HOUR_MS), client: this.texts.text(r.client[i]!), bundle: this.texts.text(r.bundle[i]!), verdict: r.verdict[i]!, count: 1, first: at, last: at });
    if (r.nameLength[i] === LONG_NAME) delete r.longNames[i];
    this.droppedHere++;
    this.head = i + 1 === r.at.length ? 0 : i + 1;
    this.size--;
  }

  /**
   * Copies the ring's rows, oldest first, into `to` (which must have room): at most two
   * copies per column (the ring wraps once), about 0.05 ms for 2,000 rows.
   */
  private copyRows(to: Rows): void {
    const r = this.ring;
    const n = this.size;
    const length = r.at.length;
    const first = Math.min(n, length - this.head);
    const copy = <A extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(from: A, into: A, width = 1): void => {
      into.set(from.subarray(this.head * width, (this.head + first) * width) as never, 0);
      if (first < n) into.set(from.subarray(0, (n - first) * width) as never, first * width);
    };
    copy(r.at, to.at);
    copy(r.client, to.client);
    copy(r.nameLength, to.nameLength);
    copy(r.names, to.names, NAME_SLOT);
    copy(r.qtype, to.qtype);
    copy(r.verdict, to.verdict);
    copy(r.rcode, to.rcode);
    copy(r.upstream, to.upstream);
    copy(r.latencyMs, to.latencyMs);
    copy(r.bundle, to.bundle);
    copy(r.ruleFile, to.ruleFile);
    copy(r.ruleLine, to.ruleLine);
    for (const key of Object.keys(r.longNames)) {
      const i = Number(key);
      to.longNames[i >= this.head ? i - this.head : i + length - this.head] = r.longNames[i]!;
    }
    to.n = n;
  }

  /** The ring's rows as a batch's columns of exactly their size (a batch of its own: a sink may keep it); empties the ring. */
  private takeRows(): Rows {
    const rows = emptyRows(this.size);
    this.copyRows(rows);
    this.ring.longNames = {};
    this.head = 0;
    this.size = 0;
    return rows;
  }

  /**
   * Whether the writer thread (this History's own, or with --workers the primary process's)
   * holds more than half its queue limit unwritten: it cannot keep up (the DNS thread keeps
   * the only core busy, so the writer at nice 19 hardly runs). Rows handed to it now would only be dropped there, after costing a copy
   * on this thread and the writer's work and garbage collection (V8's GC helper threads,
   * shared by both isolates, run at the DNS thread's priority).
   */
  private writerBehind(): boolean {
    return this.sink.behind?.() === true;
  }

  /**
   * Turns the ring's rows into roll-up counts (dropped and counted, as from a full queue),
   * summed per (hour, client, bundle, verdict) with small integer keys: no object per row.
   */
  private shedRows(): void {
    const r = this.ring;
    const length = r.at.length;
    const cells = new Map<number, RollupCell>();
    for (let k = 0; k < this.size; k++) {
      let i = this.head + k;
      if (i >= length) i -= length;
      const at = r.at[i]!;
      const hour = Math.floor(at / HOUR_MS);
      const client = r.client[i]!;
      const bundle = r.bundle[i]!;
      const verdict = r.verdict[i]!;
      // Rows of one hand-over are seconds apart: the hour is nearly always the same, and
      // ids stay small; past 2^16 clients or 2^6 bundles (never in practice) one cell per row.
      const key = client < 0x10000 && bundle < 0x40 ? (((hour & 0x3) * 0x10000 + client) * 0x40 + bundle) * 8 + verdict : -1 - k;
      const cell = cells.get(key);
      if (cell === undefined || cell.hour !== hour) {
        const fresh = { hour, client: this.texts.text(client), bundle: this.texts.text(bundle), verdict, count: 1, first: at, last: at };
        if (cell === undefined) cells.set(key, fresh);
        else this.extra.push(fresh);
      } else {
        cell.count++;
        if (at < cell.first) cell.first = at;
        if (at > cell.last) cell.last = at;
      }
    }
    for (const cell of cells.values()) this.extra.push(cell);
    this.droppedHere += this.size;
    r.longNames = {};
    this.head = 0;
    this.size = 0;
  }

  /** Hands everything counted so far to the writer thread (called every flushMs, and by close). */
  flush(): void {
    this.flushSoon = false;
    this.takeCounts();
    if (this.clientOf.length > COUNTED_CLIENTS) {
      this.clientIds.clear();
      this.clientOf = [];
    }
    if (this.size === 0 && this.extra.length === 0) return;
    if (this.size > 0 && this.writerBehind()) this.shedRows();
    const rows = this.takeRows();
    const texts = this.texts.take();
    this.lastRuleFile = '';
    this.lastRuleBundle = '';
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
    // Each client once: a text index per distinct address.
    const described = new Uint8Array(texts.length);
    for (let k = 0; k < rows.n; k++) {
      const c = rows.client[k]!;
      if (described[c] === 0) {
        described[c] = 1;
        describe(texts[c]!);
      }
    }
    for (const cell of rollups) describe(cell.client);
    try {
      this.sink.write({ rows, texts, rollups, clients, node: this.node });
    } catch (err) {
      // A sink to the primary throws once the IPC channel is closed (shutting down): the rows are lost, DNS is not.
      this.droppedHere += rows.n;
      if (!this.sinkFailed) this.log.warn(`history: cannot hand a batch on (${(err as Error).message}); its ${rows.n} rows are dropped`);
      this.sinkFailed = true;
    }
  }

  /** Runs retention now (it also runs hourly); resolves with the rows and roll-ups deleted (0 without a thread of its own). */
  retain(): Promise<number> {
    return this.thread === null || this.closed !== null ? Promise.resolve(0) : this.thread.retain();
  }

  /** Adds the history figures to the metrics (the admin API's Collector interface). */
  collect(sink: MetricsSink): void {
    addHistoryMetrics(sink, this.figures());
  }

  figures(): HistoryFigures {
    // The writer thread's own figures (unread batches and lost hand-overs included), plus this side's.
    const w = this.thread?.figures();
    return {
      databaseBytes: w?.databaseBytes ?? 0,
      queued: this.size + (w?.queued ?? 0),
      dropped: this.droppedHere + (w?.dropped ?? 0),
      writeErrors: w?.writeErrors ?? 0,
      written: w?.written ?? 0,
    };
  }

  /** Hands over everything queued and, with a thread of its own, writes it and closes the database. */
  close(): Promise<void> {
    if (this.closed !== null) return this.closed;
    for (const t of this.timers) clearInterval(t);
    this.flush();
    this.closed = this.thread?.close() ?? Promise.resolve();
    return this.closed;
  }
}

/** The observer for `--history MODE`, or null when MODE is off. */
export function createHistory(mode: HistoryMode, options: Omit<HistoryOptions, 'mode'>): History | null {
  return mode === 'off' ? null : new History({ ...options, mode });
}

/**
 * The history metrics. With --workers each worker adds its queue and drops and the primary
 * (which owns the writer thread) its writes, errors and the database size: summed by name,
 * they add up; the size is the largest, as only the owner reports one.
 */
export function addHistoryMetrics(sink: MetricsSink, f: HistoryFigures): void {
  sink.add('sinkhole_history_database_bytes', 'gauge', 'Size of history.sqlite and its write-ahead log.', f.databaseBytes, 'max');
  sink.add('sinkhole_history_queued_rows', 'gauge', 'Raw history rows waiting to be written.', f.queued);
  sink.add('sinkhole_history_dropped_rows_total', 'counter', 'Raw history rows dropped because the queue was full (still counted in roll-ups).', f.dropped);
  sink.add('sinkhole_history_write_errors_total', 'counter', 'Failed writes of history batches (disk full, read-only, ...).', f.writeErrors);
  sink.add('sinkhole_history_written_rows_total', 'counter', 'Raw history rows written.', f.written);
}

export const DEFAULT_HISTORY_DAYS = 90;
export const DEFAULT_STATE_DIR = './state';

/** `--history` value -> mode, or null when it is not one. */
export function parseHistoryMode(text: string): HistoryMode | null {
  return (HISTORY_MODES as readonly string[]).includes(text) ? (text as HistoryMode) : null;
}
