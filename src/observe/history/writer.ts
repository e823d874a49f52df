// The one writer of the history database: a batch of raw rows and roll-up counts in one
// transaction, retention in small chunks. Runs in the history worker thread (see
// writer-worker.ts), never on the thread that answers DNS.
import { statSync } from 'node:fs';
import type { Statement } from 'better-sqlite3';
import { keyToText } from '../../wire/names.js';
import { LONG_NAME, NAME_SLOT, type Batch, type Rows } from './batch.js';
import { BLOCKED, DAY_MS, HOUR_MS, ID_PER_MS, openWriter, qnameHash, type Db } from './schema.js';

/** Rows deleted per retention transaction: each takes a few ms, so batches are never held up long. */
export const RETENTION_CHUNK = 2000;
/** Ids of this many domains are remembered; past it the memory is cleared and refilled. */
const DOMAIN_CACHE = 100_000;
/** Values per row in `values`, in the order of the INSERT's columns; count and span are the last two. */
const COLUMNS = 15;
const COUNT = 13;
const SPAN = 14;

/**
 * Adds a cell to a roll-up row: first and span (schema.ts) of the union of both. The right
 * sides all see the row's old values.
 */
const MERGE = 'ON CONFLICT DO UPDATE SET count = count + excluded.count, first = min(first, excluded.first), ' +
  'span = max(first + span, excluded.first + excluded.span) - min(first, excluded.first)';

export class HistoryWriter {
  readonly db: Db;
  private lastId: number;
  private readonly clientIds = new Map<string, number>();
  private readonly domainIds = new Map<string, number>();
  private readonly labelIds = new Map<string, number>();
  private readonly stmt: Record<'client' | 'findDomain' | 'addDomain' | 'label' | 'row' | 'lastInMs' | 'rollup' | 'daily' | 'dailyDomain' | 'deleteRows' | 'deleteRollups' | 'deleteDaily' | 'deleteDailyDomains', Statement>;
  private readonly writeTx: (batches: Batch[]) => number;
  /** The rows of the batch being written, COLUMNS values each (grows with the largest batch). */
  private readonly values: (number | null)[] = [];
  /** Per batch: the newest row in `values` with each domain id, and each row's next older one (see writeRows). */
  private readonly folds = new Map<number, number>();
  private foldNext = new Int32Array(0);

  constructor(readonly path: string) {
    this.db = openWriter(path);
    const db = this.db;
    this.stmt = {
      client: db.prepare('INSERT INTO clients (address, name) VALUES (?, ?) ON CONFLICT DO UPDATE SET name = excluded.name RETURNING id'),
      // Looked up by hash and text, inserted when new (schema.ts, DOMAINS_TABLE: no UNIQUE index over the text).
      findDomain: db.prepare('SELECT id FROM domains WHERE hash = ? AND qname = ?').pluck(),
      addDomain: db.prepare('INSERT INTO domains (qname, hash) VALUES (?, ?)'),
      label: db.prepare('INSERT INTO labels (text) VALUES (?) ON CONFLICT DO UPDATE SET text = excluded.text RETURNING id'),
      row: db.prepare('INSERT INTO queries (id, client, domain, qtype, verdict, grp, bundle, rule_file, rule_line, node, rcode, upstream, latency_ms, count, span) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      lastInMs: db.prepare('SELECT max(id) AS id FROM queries WHERE id >= ? AND id < ?'),
      rollup: db.prepare(`INSERT INTO hourly (hour, client, grp, bundle, verdict, count, first, span) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ${MERGE}`),
      daily: db.prepare(`INSERT INTO daily (day, client, grp, bundle, verdict, count, first, span) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ${MERGE}`),
      dailyDomain: db.prepare(`INSERT INTO daily_domains (day, domain, bundle, count, first, span) VALUES (?, ?, ?, ?, ?, ?) ${MERGE}`),
      deleteDaily: db.prepare('DELETE FROM daily WHERE (day, client, grp, bundle, verdict) IN ' +
        '(SELECT day, client, grp, bundle, verdict FROM daily WHERE day < ? LIMIT ?)'),
      deleteDailyDomains: db.prepare('DELETE FROM daily_domains WHERE (day, domain, bundle) IN (SELECT day, domain, bundle FROM daily_domains WHERE day < ? LIMIT ?)'),
      deleteRows: db.prepare('DELETE FROM queries WHERE id IN (SELECT id FROM queries WHERE id < ? ORDER BY id LIMIT ?)'),
      deleteRollups: db.prepare('DELETE FROM hourly WHERE (hour, client, grp, bundle, verdict) IN ' +
        '(SELECT hour, client, grp, bundle, verdict FROM hourly WHERE hour < ? LIMIT ?)'),
    };
    this.lastId = (db.prepare('SELECT max(id) AS id FROM queries').get() as { id: number | null }).id ?? 0;
    this.writeTx = db.transaction((batches: Batch[]) => batches.reduce((n, batch) => n + this.writeRows(batch), 0));
  }

  /** Writes a batch in one transaction; returns the raw rows written. Throws on SQLite errors (nothing written). */
  write(batch: Batch): number {
    return this.writeAll([batch]);
  }

  /**
   * Writes batches in one transaction (all or nothing); returns the attempts written. One
   * commit for several batches: a commit writes every page the batch touched to the log, so
   * five 2,047-row batches in one transaction cost 7.3 instead of 8.8-9.2 µs per attempt when
   * every name is new (docs/history.md).
   */
  writeAll(batches: Batch[]): number {
    try {
      return this.writeTx(batches);
    } catch (err) {
      // Ids handed out inside the rolled-back transaction no longer exist.
      this.lastId = (this.db.prepare('SELECT max(id) AS id FROM queries').get() as { id: number | null }).id ?? 0;
      this.clientIds.clear();
      this.domainIds.clear();
      this.labelIds.clear();
      throw err;
    }
  }

  private writeRows(batch: Batch): number {
    const { rows, clients, texts } = batch;
    const node = this.labelId(batch.node);
    // Everything below is keyed by integers (ids, and indexes into the batch's texts): string
    // keys built per row (and the garbage they leave) were a third of this thread's CPU.
    const hourly = new RollupCells();
    const domainCells = new RollupCells();
    // Client and group ids, and label ids, by index in `texts`: one array read per row.
    const who: ([number, number] | undefined)[] = [];
    const labels = new Int32Array(texts.length).fill(-1);
    const label = (text: number): number => {
      let id = labels[text]!;
      if (id < 0) id = labels[text] = this.labelId(texts[text]!);
      return id;
    };
    // Blocked attempts folded by (second, client, qname, qtype, group, bundle, rule): the
    // rows of `values` with each domain id, newest first, chained through `foldNext`.
    const folds = this.folds;
    folds.clear();
    if (this.foldNext.length < rows.n) this.foldNext = new Int32Array(rows.n);
    const foldNext = this.foldNext;
    const values = this.values;
    // The qname bytes as a Buffer over the same memory, made per batch: a batch that came over
    // IPC (--workers) may have its columns at any offset of a buffer of its own.
    const names = Buffer.from(rows.names.buffer, rows.names.byteOffset, rows.names.byteLength);
    let stored = 0;
    for (let i = 0; i < rows.n; i++) {
      const at = Math.floor(rows.at[i]!);
      let ids = who[rows.client[i]!];
      if (ids === undefined) {
        const address = texts[rows.client[i]!]!;
        const info = clients[address];
        ids = who[rows.client[i]!] = [this.clientId(address, info?.name ?? ''), this.labelId(info?.group ?? 'default')];
      }
      const [client, group] = ids;

      const bundleId = label(rows.bundle[i]!);
      const verdict = rows.verdict[i]!;
      const domain = this.domainId(rows, names, i);
      const qtype = rows.qtype[i]!;
      const ruleFile = rows.ruleFile[i] === 0 ? null : label(rows.ruleFile[i]!);
      const ruleLine = ruleFile === null ? null : rows.ruleLine[i]!;
      hourly.add(client, Math.floor(at / HOUR_MS), group, bundleId, verdict, 1, at, at);
      if (verdict === BLOCKED) {
        domainCells.add(domain, Math.floor(at / DAY_MS), 0, bundleId, 0, 1, at, at);
        const second = Math.floor(at / 1000);
        let into = folds.get(domain) ?? -1;
        while (into >= 0) {
          const o = into * COLUMNS;
          if (Math.floor((values[o] as number) / ID_PER_MS / 1000) === second && values[o + 1] === client && values[o + 3] === qtype &&
            values[o + 5] === group && values[o + 6] === (rows.bundle[i] === 0 ? null : bundleId) && values[o + 7] === ruleFile && values[o + 8] === ruleLine) break;
          into = foldNext[into]!;
        }
        if (into >= 0) {
          const o = into * COLUMNS;
          values[o + COUNT]!++;
          const span = at - Math.floor((values[o] as number) / ID_PER_MS);
          if (span > (values[o + SPAN] as number)) values[o + SPAN] = span;
          continue;
        }
        if (this.backdated(at) && stored > 0) stored = this.insertPending(stored);
        const id = this.rowId(at);
        if (id < 0) continue;
        foldNext[stored] = folds.get(domain) ?? -1;
        folds.set(domain, stored);
        this.storeRow(stored++, id, i, batch, client, domain, group, bundleId, ruleFile, ruleLine, node, label);
        continue;
      }
      if (this.backdated(at) && stored > 0) stored = this.insertPending(stored);
      const id = this.rowId(at);
      if (id < 0) continue;
      this.storeRow(stored++, id, i, batch, client, domain, group, bundleId, ruleFile, ruleLine, node, label);
    }
    this.insertRows(stored);
    for (const r of batch.rollups) {
      const info = clients[r.client];
      hourly.add(this.clientId(r.client, info?.name ?? ''), r.hour, this.labelId(info?.group ?? 'default'), this.labelId(r.bundle), r.verdict, r.count, r.first, r.last);
    }
    const daily = new RollupCells();
    // Cells hold ms since 1970; the tables keep first from the hour's (day's) start, and the span.
    hourly.forEach((client, hour, group, bundle, verdict, count, first, last) => {
      this.stmt.rollup.run(hour, client, group, bundle, verdict, count, first - hour * HOUR_MS, last - first);
      daily.add(client, Math.floor(hour / 24), group, bundle, verdict, count, first, last);
    });
    daily.forEach((client, day, group, bundle, verdict, count, first, last) =>
      this.stmt.daily.run(day, client, group, bundle, verdict, count, first - day * DAY_MS, last - first));
    domainCells.forEach((domain, day, _group, bundle, _verdict, count, first, last) =>
      this.stmt.dailyDomain.run(day, domain, bundle, count, first - day * DAY_MS, last - first));
    return rows.n;
  }

  /** Row `r` of `values`: the raw row of attempt `i` of `rows`, counted once. */
  private storeRow(r: number, id: number, i: number, batch: Batch, client: number, domain: number, group: number, bundleId: number,
    ruleFile: number | null, ruleLine: number | null, node: number, label: (text: number) => number): void {
    const { rows } = batch;
    const values = this.values;
    const latency = rows.latencyMs[i]!;
    const o = r * COLUMNS;
    values[o] = id;
    values[o + 1] = client;
    values[o + 2] = domain;
    values[o + 3] = rows.qtype[i]!;
    values[o + 4] = rows.verdict[i]!;
    values[o + 5] = group;
    values[o + 6] = rows.bundle[i] === 0 ? null : bundleId;
    values[o + 7] = ruleFile;
    values[o + 8] = ruleLine;
    values[o + 9] = node;
    values[o + 10] = rows.rcode[i]!;
    values[o + 11] = rows.upstream[i] === 0 ? null : label(rows.upstream[i]!);
    values[o + 12] = Number.isNaN(latency) ? null : Math.round(latency * 1000) / 1000;
    values[o + COUNT] = 1;
    values[o + SPAN] = 0;
  }

  /**
   * Inserts the first `n` rows of `values`, one statement run per row. Multi-row INSERTs (32
   * rows, 480 values, per statement) were measured slower: 9.5 against 6.7 µs per attempt
   * (`node dist-bench/bench/history.js writer`, mix), so they are not used.
   */
  private insertRows(n: number): void {
    const v = this.values;
    const stmt = this.stmt.row;
    for (let o = 0; o < n * COLUMNS; o += COLUMNS) {
      stmt.run(v[o], v[o + 1], v[o + 2], v[o + 3], v[o + 4], v[o + 5], v[o + 6], v[o + 7], v[o + 8], v[o + 9], v[o + 10], v[o + 11], v[o + 12], v[o + 13], v[o + 14]);
    }
  }

  /**
   * Inserts the rows waiting in `values` now, before a row older than the newest (the clock
   * was set back) gets an id looked up in the table; folding starts anew. Returns 0, the
   * rows left waiting.
   */
  private insertPending(stored: number): number {
    this.insertRows(stored);
    this.folds.clear();
    return 0;
  }

  /** Whether a row at `at` ms is older than the newest row: its id is found in the table (rowId). */
  private backdated(at: number): boolean {
    const base = at * ID_PER_MS;
    return base <= this.lastId && this.lastId >= base + ID_PER_MS - 1;
  }

  private rowId(at: number): number {
    const base = at * ID_PER_MS;
    if (base > this.lastId) return (this.lastId = base);
    if (this.lastId < base + ID_PER_MS - 1) return ++this.lastId;
    const taken = (this.stmt.lastInMs.get(base, base + ID_PER_MS) as { id: number | null }).id;
    const id = taken === null ? base : taken + 1;
    return id < base + ID_PER_MS ? id : -1;
  }

  private clientId(address: string, name: string): number {
    const key = `${address}\0${name}`;
    let id = this.clientIds.get(key);
    if (id === undefined) {
      id = (this.stmt.client.get(address, name) as { id: number }).id;
      this.clientIds.set(key, id);
    }
    return id;
  }

  /** The id of row i's qname (its wire-form key, read straight from the batch's bytes, `names`). */
  private domainId(rows: Rows, names: Buffer, i: number): number {
    const length = rows.nameLength[i]!;
    // toString('latin1') is 2.5 times faster than String.fromCharCode over a subarray for such short names (73 against 190 ns).
    const qnameKey = length === LONG_NAME ? rows.longNames[i] ?? '' : names.toString('latin1', i * NAME_SLOT, i * NAME_SLOT + length);
    let id = this.domainIds.get(qnameKey);
    if (id === undefined) {
      if (this.domainIds.size >= DOMAIN_CACHE) this.domainIds.clear();
      const qname = keyToText(qnameKey);
      const hash = qnameHash(qname);
      id = (this.stmt.findDomain.get(hash, qname) as number | undefined) ?? Number(this.stmt.addDomain.run(qname, hash).lastInsertRowid);
      this.domainIds.set(qnameKey, id);
    }
    return id;
  }

  private labelId(text: string): number {
    let id = this.labelIds.get(text);
    if (id === undefined) {
      id = (this.stmt.label.get(text) as { id: number }).id;
      this.labelIds.set(text, id);
    }
    return id;
  }

  /**
   * Deletes one chunk of what retention says is old: raw rows older than `days`, roll-ups
   * (hourly, daily, daily per name) older than twice that. Returns the rows deleted (0 when nothing old is left); the caller
   * repeats it, letting batches in between.
   */
  retainChunk(now: number, days: number): number {
    const rawBefore = (now - days * DAY_MS) * ID_PER_MS;
    const rollupBefore = Math.floor((now - 2 * days * DAY_MS) / HOUR_MS);
    // Whole days only: a day's roll-up goes when all its hours have gone.
    const dayBefore = Math.floor((now - 2 * days * DAY_MS) / DAY_MS);
    const deleted = this.stmt.deleteRows.run(rawBefore, RETENTION_CHUNK).changes + this.stmt.deleteRollups.run(rollupBefore, RETENTION_CHUNK).changes +
      this.stmt.deleteDaily.run(dayBefore, RETENTION_CHUNK).changes + this.stmt.deleteDailyDomains.run(dayBefore, RETENTION_CHUNK).changes;
    // Give freed pages back to the file system a few at a time (auto_vacuum = INCREMENTAL).
    if (deleted === 0) this.db.pragma('incremental_vacuum(256)');
    return deleted;
  }

  /** Bytes on disk: the database and its write-ahead log. */
  sizeBytes(): number {
    let bytes = 0;
    for (const suffix of ['', '-wal']) {
      try {
        bytes += statSync(this.path + suffix).size;
      } catch {
        // No WAL file right now.
      }
    }
    return bytes;
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Roll-up cells of one batch, found by integers: cells of one owner (a client id for the
 * hourly and daily tables, a domain id for daily_domains) in a short list scanned for the
 * rest of the key. A batch holds few cells per owner (an hour or two, a few bundles).
 */
class RollupCells {
  /** Per owner: flat runs of CELL numbers (when, group, bundle, verdict, count, first, last). */
  private readonly byOwner = new Map<number, number[]>();

  add(owner: number, when: number, group: number, bundle: number, verdict: number, count: number, first: number, last: number): void {
    let cells = this.byOwner.get(owner);
    if (cells === undefined) this.byOwner.set(owner, (cells = []));
    for (let o = 0; o < cells.length; o += CELL) {
      if (cells[o] === when && cells[o + 1] === group && cells[o + 2] === bundle && cells[o + 3] === verdict) {
        cells[o + 4]! += count;
        if (first < cells[o + 5]!) cells[o + 5] = first;
        if (last > cells[o + 6]!) cells[o + 6] = last;
        return;
      }
    }
    cells.push(when, group, bundle, verdict, count, first, last);
  }

  forEach(f: (owner: number, when: number, group: number, bundle: number, verdict: number, count: number, first: number, last: number) => void): void {
    for (const [owner, cells] of this.byOwner) {
      for (let o = 0; o < cells.length; o += CELL) f(owner, cells[o]!, cells[o + 1]!, cells[o + 2]!, cells[o + 3]!, cells[o + 4]!, cells[o + 5]!, cells[o + 6]!);
    }
  }
}
const CELL = 7;
