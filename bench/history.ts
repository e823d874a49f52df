// History figures (docs/history.md), built with `npx tsc -p tsconfig.bench.json`:
// `node dist-bench/bench/history.js batch|hot|growth|report|search|demo`.
//   batch   time of writing a 10,000-row batch on this thread, against the time this thread
//           spends handing the same batch to the writer thread (History.flush)
//   growth  N (default 1,000,000) blocked attempts through History.answered -> writer thread
//           -> history.sqlite, spread over 90 days, from C clients (default 200); prints MB
//           and bytes per attempt
//   hot     µs per History.answered call on the DNS thread, --history blocked and all,
//           forwarded and blocked queries (median and min of ROUNDS, default 15)
//   demo    DIR: a week of attempts by three clients, from the shipped lists, into DIR (for
//           the examples in docs/history.md: `sinkhole report --state-dir DIR`)
//   search  N (default 1,000,000) attempts written as for report, then the time of a page
//           of single attempts (GET /api/attempts) with each filter
//   writer  [ROUNDS] CPU µs per blocked attempt of HistoryWriter.write (the writer thread's
//           SQLite work) on this thread, batches of 2,047 rows at 20 attempts per ms, for
//           three shapes: w1 (a new random subdomain each time, one client: the benchmark's
//           W1), retries (one client retrying 20 messenger names), mix (2,000 names, 200
//           clients, skewed). HISTORY_WRITER=path/to/writer.js measures another build's writer;
//           BATCHES_PER_COMMIT=N writes N batches per transaction (default 1); HISTORY_SHAPES=w1,mix
//           measures only those shapes.
//   report  N (default 10,000,000) attempts written with HistoryWriter in 50k batches, then
//           the time of 90-day reports
// Not part of `npm run bench`: it measures the history module, not DNS.
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Outcome, QueryEvent } from '../src/observe/event.js';
import { emptyRows, setQnameKey, Texts, type Batch } from '../src/observe/history/batch.js';
import { EARLY_FLUSH_ROWS, History } from '../src/observe/history/history.js';
import { report, type ReportBy } from '../src/observe/history/report.js';
import { DB_FILE, openReader } from '../src/observe/history/schema.js';
import { searchAttempts, type SearchQuery } from '../src/observe/history/search.js';
import { HistoryWriter } from '../src/observe/history/writer.js';
import { ruleOf, type RuleRef } from '../src/stages/policy/ruleset.js';
import { loadBlocklists } from '../src/stages/policy/load.js';
import { parseQuery, Query } from '../src/wire/query.js';

const DAY = 86_400_000;
const BUNDLES = ['whatsapp', 'telegram', 'signal', 'discord', 'skype', 'icq', 'yahoo-messenger', 'msn'];

function queryBytes(name: string, qtype: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, qtype >> 8, qtype & 0xff, 0, 1])]);
}

/** A mix: 2,000 blocked names over 8 bundles, clients of which a few try most. */
function workload(clientCount = 200): { queries: Query[]; rules: RuleRef[]; clients: string[] } {
  const queries: Query[] = [];
  const rules: RuleRef[] = [];
  for (let i = 0; i < 2000; i++) {
    const bundle = BUNDLES[i % BUNDLES.length]!;
    const q = parseQuery(queryBytes(`host${i}.edge-${i % 37}.${bundle}.example.net`, i % 3 === 0 ? 28 : 1));
    if (!(q instanceof Query)) throw new Error('query did not parse');
    queries.push(q);
    rules.push({ file: `/etc/sinkhole/blocklists/${bundle}.txt`, bundle, line: 1 + (i % 40), allow: false, rule: `${bundle}.example.net` });
  }
  const clients = Array.from({ length: clientCount }, (_, i) => `192.168.${1 + (i >> 8)}.${i & 255}`);
  return { queries, rules, clients };
}

class Event implements QueryEvent {
  query!: Query;
  outcome: Outcome = 'blocked';
  rcode = 0;
  upstream = '';
  at = 0;
  decision = 0;
  ref: RuleRef | null = null;
  rule(): RuleRef | null {
    return this.ref;
  }
  elapsedMs(): number {
    return 0;
  }
}

/** One raw row as the benches describe it, before it becomes a batch's columns. */
interface BenchRow { at: number; client: string; qnameKey: string; qtype: number; bundle: string; ruleFile: string; ruleLine: number }

/** The batch of these rows (texts interned, qnames as bytes), as History.flush makes it. */
function batchOf(list: BenchRow[]): Batch {
  const texts = new Texts();
  const rows = emptyRows(list.length);
  list.forEach((r, i) => {
    rows.at[i] = r.at;
    rows.client[i] = texts.id(r.client);
    setQnameKey(rows, i, r.qnameKey);
    rows.qtype[i] = r.qtype;
    rows.latencyMs[i] = NaN;
    rows.bundle[i] = texts.id(r.bundle);
    rows.ruleFile[i] = texts.id(r.ruleFile);
    rows.ruleLine[i] = r.ruleLine;
  });
  rows.n = list.length;
  return { rows, texts: texts.take(), rollups: [], clients: {}, node: 'bench' };
}

/** Skewed choice in [0, n): a few values come up most of the time. */
const skewed = (n: number): number => Math.floor(n * Math.random() ** 3);

function fileMb(path: string): number {
  let bytes = 0;
  for (const s of ['', '-wal']) {
    try {
      bytes += statSync(path + s).size;
    } catch {
      // no WAL
    }
  }
  return bytes / 1e6;
}

async function growth(n: number, clientCount: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-history-'));
  const { queries, rules, clients } = workload(clientCount);
  const history = new History({ mode: 'blocked', days: 90, stateDir: dir, log: { warn: (m) => console.error(m), info: () => undefined } });
  const e = new Event();
  const start = Date.now() - 90 * DAY;
  const step = (90 * DAY) / n;
  let answeredNs = 0n;
  const began = Date.now();
  for (let i = 0; i < n; i++) {
    const k = skewed(queries.length);
    const q = queries[k]!;
    q.clientAddress = clients[skewed(clients.length)]!;
    e.query = q;
    e.ref = rules[k]!;
    e.at = start + i * step;
    const t0 = process.hrtime.bigint();
    history.answered(e);
    answeredNs += process.hrtime.bigint() - t0;
    // Let the hand-overs run, as the event loop would between packets: a hand-over of more
    // than half the shared ring (about 40,000 rows) is refused, and a loop that never yields
    // makes one. Then let the writer keep up, as it would at a real rate: while more than
    // 20,000 rows wait, the DNS side would shed raw rows into counts (History.writerBehind).
    // Paced on what is queued, not on what is written: rows shed or lost are never written.
    if (i % 2_000 === 1_999) {
      await new Promise((r) => setImmediate(r));
      while (history.figures().queued > 20_000) await new Promise((r) => setTimeout(r, 20));
    }
  }
  await history.close();
  const f = history.figures();
  if (f.dropped > 0) console.log(`  dropped ${f.dropped} raw rows (queue full): they are only counted`);
  const path = join(dir, DB_FILE);
  const db = openReader(path);
  const tables = db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC").all() as { name: string; bytes: number }[];
  const counts = db.prepare('SELECT (SELECT count(*) FROM queries) AS raw, (SELECT count(*) FROM hourly) AS hourly, (SELECT count(*) FROM domains) AS domains').get();
  db.close();
  const mb = fileMb(path);
  console.log(`growth: ${n} blocked attempts over 90 days (2,000 names, ${clientCount} clients, 8 bundles): ${mb.toFixed(1)} MB, ${(mb * 1e6 / n).toFixed(1)} bytes per attempt`);
  console.log(`  rows: ${JSON.stringify(counts)}; ${((Date.now() - began) / 1000).toFixed(1)} s wall; History.answered ${(Number(answeredNs) / n).toFixed(0)} ns per blocked event on the DNS thread`);
  console.log(`  by table: ${tables.map((t) => `${t.name} ${(t.bytes / 1e6).toFixed(1)} MB`).join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}

function syntheticBatch(n: number, from: number, step: number, w: ReturnType<typeof workload>): Batch {
  const list: BenchRow[] = [];
  for (let i = 0; i < n; i++) {
    const k = skewed(w.queries.length);
    list.push({ at: from + i * step, client: w.clients[skewed(w.clients.length)]!, qnameKey: w.queries[k]!.qnameKey, qtype: w.queries[k]!.qtype,
      bundle: w.rules[k]!.bundle, ruleFile: w.rules[k]!.file, ruleLine: w.rules[k]!.line });
  }
  return batchOf(list);
}

async function batch(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-history-'));
  const w = workload();
  const writer = new HistoryWriter(join(dir, 'inline.sqlite'));
  const inline: number[] = [];
  for (let b = 0; b < 10; b++) {
    const batch = syntheticBatch(10_000, Date.now() + b * 10_000, 1, w);
    const t0 = performance.now();
    writer.write(batch);
    inline.push(performance.now() - t0);
  }
  writer.close();
  const history = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 3_600_000, log: { warn: (m) => console.error(m), info: () => undefined } });
  const e = new Event();
  const handoff: number[] = [];
  for (let b = 0; b < 60; b++) {
    // As many rows as reach the writer in one early hand-over (EARLY_FLUSH_ROWS).
    for (let i = 0; i < EARLY_FLUSH_ROWS - 1; i++) {
      const k = skewed(w.queries.length);
      const q = w.queries[k]!;
      q.clientAddress = w.clients[skewed(w.clients.length)]!;
      e.query = q;
      e.ref = w.rules[k]!;
      e.at = Date.now();
      history.answered(e);
    }
    const t0 = performance.now();
    history.flush();
    handoff.push(performance.now() - t0);
    while (history.figures().queued > 0 || history.figures().written < (b + 1) * (EARLY_FLUSH_ROWS - 1)) await new Promise((r) => setTimeout(r, 10));
  }
  await history.close();
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!.toFixed(2);
  console.log(`batch of 10,000 rows: written on this thread ${med(inline)} ms median (min ${Math.min(...inline).toFixed(2)}, max ${Math.max(...inline).toFixed(2)}); ` +
    `a batch of ${EARLY_FLUSH_ROWS - 1} rows handed to the writer thread ${med(handoff)} ms median (min ${Math.min(...handoff).toFixed(2)}, max ${Math.max(...handoff).toFixed(2)})`);
  rmSync(dir, { recursive: true, force: true });
}

async function reports(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-history-'));
  const path = join(dir, DB_FILE);
  const w = workload();
  const writer = new HistoryWriter(path);
  const now = Date.now();
  const step = (90 * DAY) / n;
  const began = Date.now();
  for (let i = 0; i < n; i += 50_000) writer.write(syntheticBatch(Math.min(50_000, n - i), now - 90 * DAY + i * step, step, w));
  writer.close();
  console.log(`report: ${n} attempts over 90 days written in ${((Date.now() - began) / 1000).toFixed(0)} s; database ${fileMb(path).toFixed(0)} MB`);
  const db = openReader(path);
  const cases: [string, ReportBy, { client?: string; bundle?: string }][] = [
    ['--by client', 'client', {}], ['--by bundle', 'bundle', {}], ['--by day', 'day', {}], ['--by group', 'group', {}],
    ['--by bundle --client 192.168.1.0', 'bundle', { client: '192.168.1.0' }], ['--by domain', 'domain', {}], ['--by domain --bundle whatsapp', 'domain', { bundle: 'whatsapp' }],
  ];
  for (const [label, by, filter] of cases) {
    // A range that cuts hours at both ends, as `--since 90d` does.
    const q = { since: now - 90 * DAY + 1234, until: now - 1234, by, ...filter };
    const t0 = performance.now();
    const r = report(db, q);
    const t1 = performance.now();
    report(db, q);
    const t2 = performance.now();
    console.log(`  90-day report ${label}: ${((t1 - t0) / 1000).toFixed(3)} s (again: ${((t2 - t1) / 1000).toFixed(3)} s), ${r.rows.length} rows, ${r.rows.reduce((a, x) => a + x.count, 0)} attempts`);
  }
  db.close();
  if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
  else console.log(`  kept ${path}`);
}

/** N attempts written as in `report`, then the time of searches over single attempts (GET /api/attempts). */
async function searches(n: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-history-'));
  const path = join(dir, DB_FILE);
  const w = workload();
  const writer = new HistoryWriter(path);
  const now = Date.now();
  const step = (90 * DAY) / n;
  const began = Date.now();
  for (let i = 0; i < n; i += 50_000) writer.write(syntheticBatch(Math.min(50_000, n - i), now - 90 * DAY + i * step, step, w));
  writer.close();
  const db = openReader(path);
  const tables = db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC").all() as { name: string; bytes: number }[];
  console.log(`search: ${n} attempts over 90 days (200 clients, skewed) written in ${((Date.now() - began) / 1000).toFixed(0)} s; database ${fileMb(path).toFixed(1)} MB ` +
    `(${(fileMb(path) * 1e6 / n).toFixed(1)} bytes per attempt); by table and index: ${tables.map((t) => `${t.name} ${(t.bytes / 1e6).toFixed(1)}`).join(', ')} MB`);
  // Clients are chosen skewed: 192.168.1.0 is the busiest, 192.168.1.199 among the rarest.
  const cases: [string, Partial<SearchQuery>][] = [
    ['no filter', {}], ['--client busiest', { client: '192.168.1.0' }], ['--client rare', { client: '192.168.1.199' }],
    ['--name one name', { name: 'host1999.edge-1.msn.example.net' }], ['--name "edge-5." (54 names)', { name: 'edge-5.' }],
    ['--name "msn" (250 names)', { name: 'msn' }], ['--bundle icq', { bundle: 'icq' }],
    ['--client rare --bundle icq', { client: '192.168.1.199', bundle: 'icq' }], ['--client busiest --name "edge-5."', { client: '192.168.1.0', name: 'edge-5.' }],
  ];
  for (const [label, filter] of cases) {
    const q: SearchQuery = { since: now - 90 * DAY, until: now, limit: 50, ...filter };
    const t0 = performance.now();
    const first = searchAttempts(db, q);
    const t1 = performance.now();
    const second = first.next === null ? first : searchAttempts(db, { ...q, before: Number(first.next) });
    const t2 = performance.now();
    searchAttempts(db, q);
    const t3 = performance.now();
    console.log(`  ${label}: first page ${(t1 - t0).toFixed(1)} ms (again ${(t3 - t2).toFixed(1)} ms), next page ${(t2 - t1).toFixed(1)} ms; ${first.rows.length} + ${second === first ? 0 : second.rows.length} rows`);
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The DNS thread's share: History.answered per query, for --history blocked and all, a
 * forwarded query (blocked mode: only counted in the hourly roll-up; all: copied into the
 * ring) and a blocked query (copied into the ring). The event's rule() returns a ready
 * RuleRef here, so this is History's own cost. Modes and outcomes alternate over ROUNDS
 * rounds of 200,000 queries each; median and minimum are printed (the machine is shared).
 */
async function hot(rounds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-history-'));
  const w = workload();
  const log = { warn: (m: string) => console.error(m), info: () => undefined };
  const e = new Event();
  const run = async (history: History, outcome: Outcome): Promise<number> => {
    e.outcome = outcome;
    let ns = 0n;
    for (let chunk = 0; chunk < 20; chunk++) {
      // A new address string per query, as the socket gives one per packet (its hash not yet
      // computed), made just before the clock starts, so it is as fresh in the cache.
      const fresh = Array.from({ length: 10_000 }, (_, i) => Buffer.from(w.clients[i % w.clients.length]!).toString('latin1'));
      // The clock is read once per chunk: the pipeline reads it anyway, it is not History's cost.
      const now = Date.now();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 10_000; i++) {
        const k = (chunk * 10_000 + i) % w.queries.length;
        const q = w.queries[k]!;
        q.clientAddress = fresh[i]!;
        e.query = q;
        e.ref = outcome === 'blocked' ? w.rules[k]! : null;
        e.at = now;
        history.answered(e);
      }
      ns += process.hrtime.bigint() - t0;
      // Let the hand-overs run, as the event loop would between packets.
      await new Promise((r) => setImmediate(r));
    }
    return Number(ns) / 200_000 / 1000;
  };
  const modes = ['blocked', 'all'] as const;
  // Batches are handed to a sink that drops them: no writer thread competes for the cores,
  // only the DNS thread's work is timed (hand-overs included).
  const sink = { write: (): void => undefined };
  const histories = modes.map((mode) => new History({ mode, days: 90, stateDir: join(dir, mode), log, sink }));
  const times: Record<string, number[]> = {};
  for (let r = 0; r <= rounds; r++) {
    for (let m = 0; m < modes.length; m++) {
      for (const outcome of ['forwarded', 'blocked'] as const) {
        const us = await run(histories[m]!, outcome);
        // Round 0 warms up (JIT, ring growth).
        if (r > 0) (times[`${modes[m]} ${outcome}`] ??= []).push(us);
      }
    }
  }
  for (const h of histories) await h.close();
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
  console.log(`History.answered, µs per query (median of ${rounds} rounds of 200,000; min in brackets):`);
  for (const [k, a] of Object.entries(times)) console.log(`  --history ${k.padEnd(17)} ${med(a).toFixed(3)} µs  (${Math.min(...a).toFixed(3)})`);
  rmSync(dir, { recursive: true, force: true });
}

/** A week of attempts from three clients against the shipped lists, through History. */
async function demo(dir: string): Promise<void> {
  const shipped = join(import.meta.dirname, '..', '..', 'blocklists');
  const lists = mkdtempSync(join(tmpdir(), 'sinkhole-demo-lists-'));
  for (const f of ['available/whatsapp.txt', 'available/telegram.txt', 'available/signal.txt', 'yahoo-messenger.txt']) copyFileSync(join(shipped, f), join(lists, basename(f)));
  const rules = (await loadBlocklists(lists)).ruleSet;
  const history = new History({ mode: 'blocked', days: 90, stateDir: dir, node: 'gw1' });
  const names: Record<string, { name: string; group: string }> = {
    '192.168.1.23': { name: 'laptop-7', group: 'kids' }, '192.168.1.40': { name: 'phone-anna', group: 'staff' },
  };
  history.describeClient = (a) => names[a] ?? { name: '', group: 'default' };
  const tries: [string, string, number, number][] = [
    // client, name, attempts, over how many days back
    ['192.168.1.23', 'web.whatsapp.com', 40, 6], ['192.168.1.23', 'mmg.whatsapp.net', 25, 6], ['192.168.1.23', 'telegram.org', 9, 3],
    ['192.168.1.40', 'chat.signal.org', 12, 5], ['192.168.1.40', 'web.whatsapp.com', 3, 1], ['192.168.1.57', 'scs.msg.yahoo.com', 6, 2],
  ];
  const e = new Event();
  const now = Date.now();
  const all: [number, string, string][] = [];
  for (const [client, name, n, days] of tries) for (let i = 0; i < n; i++) all.push([now - Math.floor(((i + 0.5) / n) * days * DAY), client, name]);
  all.sort((a, b) => a[0] - b[0]);
  for (const [at, client, name] of all) {
    const q = parseQuery(queryBytes(name, 1));
    if (!(q instanceof Query)) throw new Error('query did not parse');
    q.clientAddress = client;
    const m = rules.match(q.qnameKey);
    e.query = q;
    e.ref = m >= 0 ? rules.describe(ruleOf(m)) : null;
    e.at = at;
    history.answered(e);
  }
  await history.close();
  console.log(`demo: ${all.length} attempts in ${join(dir, DB_FILE)}`);
}

/** CPU µs per attempt of HistoryWriter.write, by shape (see the header). */
async function writerCpu(rounds: number): Promise<void> {
  const path = process.env.HISTORY_WRITER;
  const Writer = (path === undefined ? HistoryWriter : (await import(path) as { HistoryWriter: typeof HistoryWriter }).HistoryWriter);
  const w = workload();
  const n = EARLY_FLUSH_ROWS - 1;
  const perCommit = Number(process.env.BATCHES_PER_COMMIT ?? 1);
  const shapes: Record<string, (b: number, i: number, rows: BenchRow) => void> = {
    w1: (_b, _i, rows) => {
      // Names as the benchmark's W1 and W3 make them (bench/generate.ts): x<0-99999>.<a listed
      // name>, both drawn at random, so nearly every one is new and lands anywhere in an index.
      const k = Math.floor(Math.random() * w.queries.length);
      rows.client = '10.0.0.1';
      const label = `x${Math.floor(Math.random() * 100_000)}`;
      rows.qnameKey = String.fromCharCode(label.length) + label + w.queries[k]!.qnameKey;
      rows.qtype = w.queries[k]!.qtype;
      rows.bundle = w.rules[k]!.bundle;
      rows.ruleFile = w.rules[k]!.file;
      rows.ruleLine = w.rules[k]!.line;
    },
    retries: (_b, i, rows) => {
      const k = i % 20;
      rows.client = '10.0.0.1';
      rows.qnameKey = w.queries[k]!.qnameKey;
      rows.qtype = w.queries[k]!.qtype;
      rows.bundle = w.rules[k]!.bundle;
      rows.ruleFile = w.rules[k]!.file;
      rows.ruleLine = w.rules[k]!.line;
    },
    mix: (_b, _i, rows) => {
      const k = skewed(w.queries.length);
      rows.client = w.clients[skewed(w.clients.length)]!;
      rows.qnameKey = w.queries[k]!.qnameKey;
      rows.qtype = w.queries[k]!.qtype;
      rows.bundle = w.rules[k]!.bundle;
      rows.ruleFile = w.rules[k]!.file;
      rows.ruleLine = w.rules[k]!.line;
    },
  };
  const only = process.env.HISTORY_SHAPES?.split(',');
  for (const [shape, fill] of Object.entries(shapes)) {
    if (only !== undefined && !only.includes(shape)) continue;
    const dir = mkdtempSync(join(tmpdir(), 'sinkhole-bench-writer-'));
    const writer = new Writer(join(dir, DB_FILE));
    const perAttempt: number[] = [];
    let at = Date.now();
    for (let r = 0; r < rounds; r++) {
      // A round: 20 batches (40,940 attempts), as the thread would get them in 2 s at 20k/s.
      const batches: Batch[] = [];
      for (let b = 0; b < 20; b++) {
        const list: BenchRow[] = [];
        for (let i = 0; i < n; i++) {
          const row: BenchRow = { at: at + i / 20, client: '', qnameKey: '', qtype: 1, bundle: '', ruleFile: '', ruleLine: 0 };
          fill(r * 20 + b, i, row);
          list.push(row);
        }
        at += n / 20;
        batches.push({ ...batchOf(list), clients: { '10.0.0.1': { name: '', group: 'default' } } });
      }
      const before = process.cpuUsage();
      // BATCHES_PER_COMMIT=5: hand-overs sharing a transaction as the writer thread does at
      // 20,000 a second (writer-worker.ts); a build without writeAll commits each.
      for (let b = 0; b < batches.length; b += perCommit) {
        if (writer.writeAll === undefined) for (const batch of batches.slice(b, b + perCommit)) writer.write(batch);
        else writer.writeAll(batches.slice(b, b + perCommit));
      }
      const used = process.cpuUsage(before);
      perAttempt.push((used.user + used.system) / (20 * n));
    }
    const bytes = writer.sizeBytes();
    writer.close();
    rmSync(dir, { recursive: true, force: true });
    const sorted = [...perAttempt].sort((x, y) => x - y);
    console.log(`writer ${shape}${perCommit > 1 ? ` (${perCommit} batches per commit)` : ''}: ${sorted[sorted.length >> 1]!.toFixed(2)} µs CPU per attempt median (min ${sorted[0]!.toFixed(2)}, max ${sorted.at(-1)!.toFixed(2)}) over ${rounds} rounds of 40,940; ` +
      `database ${(bytes / 1e6).toFixed(1)} MB = ${(bytes / (rounds * 20 * n)).toFixed(1)} bytes per attempt`);
  }
}

const [what, count, clientCount] = process.argv.slice(2);
if (what === 'batch') await batch();
else if (what === 'writer') await writerCpu(Number(count ?? 10));
else if (what === 'hot') await hot(Number(count ?? 15));
else if (what === 'demo') await demo(count ?? 'state');
else if (what === 'growth') await growth(Number(count ?? 1_000_000), Number(clientCount ?? 200));
else if (what === 'report') await reports(Number(count ?? 10_000_000));
else if (what === 'search') await searches(Number(count ?? 1_000_000));
else {
  console.error('usage: node dist-bench/bench/history.js batch | writer [ROUNDS] | hot [ROUNDS] | growth [N [CLIENTS]] | report [N] [--keep] | search [N] | demo DIR');
  process.exit(2);
}
