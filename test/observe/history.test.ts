// History: QueryEvents from real parsed queries go into history.sqlite (raw rows and hourly
// roll-ups), survive a restart and a kill -9 (less at most the last batch), are deleted by
// retention, and a state folder that cannot be written never makes the observer throw.
import { fork, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { History, type HistoryOptions } from '../../src/observe/history/history.js';
import { report } from '../../src/observe/history/report.js';
import { DB_FILE, openReader } from '../../src/observe/history/schema.js';
import { WriterThread } from '../../src/observe/history/writer-thread.js';
import type { Batch } from '../../src/observe/history/batch.js';
import { MetricsSink } from '../../src/pipeline/metrics.js';
import { eventSource } from '../helpers/history.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const src = await eventSource();

function stateDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-history-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function history(dir: string, o: Partial<HistoryOptions> = {}): History {
  return new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'node-a', log: { warn: () => undefined, info: () => undefined }, ...o });
}

function rows<T>(dir: string, sql: string, ...params: unknown[]): T[] {
  const db = openReader(join(dir, DB_FILE));
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await sleep(20)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

/** An hourly row's first and last attempt in ms (the table keeps first from the hour's start, and the span). */
const TIMES = `h.hour * ${HOUR} + h.first AS first, h.hour * ${HOUR} + h.first + h.span AS last`;

// A fixed afternoon, so hours and days are known: 2026-11-03 14:20 UTC.
const T0 = Date.UTC(2026, 10, 3, 14, 20);

t.test('blocked mode: a raw row per blocked query, names stored once, roll-ups for every verdict', async (t) => {
  const dir = stateDir(t);
  const h = history(dir);
  h.describeClient = (a) => (a === '192.168.1.23' ? { name: 'laptop-7', group: 'kids' } : { name: '', group: 'default' });
  for (let i = 0; i < 3; i++) h.answered(src.event('192.168.1.23', 'web.WhatsApp.com', 1, T0 + i * 1000));
  h.answered(src.event('192.168.1.23', 'telegram.org', 28, T0 + 5000));
  h.answered(src.event('192.168.1.40', 'www.icq.com', 1, T0 + HOUR));
  for (let i = 0; i < 5; i++) h.answered(src.event('192.168.1.23', `n${i}.example.org`, 1, T0 + 10_000 + i, i < 3 ? 'forwarded' : 'cached'));
  await h.close();

  const raw = rows<Record<string, unknown>>(dir, 'SELECT * FROM attempts ORDER BY time');
  t.equal(raw.length, 5, 'blocked queries only');
  t.match(raw[0], {
    time: '2026-11-03T14:20:00.000Z', client: '192.168.1.23', client_name: 'laptop-7', grp: 'kids', qname: 'web.whatsapp.com', qtype: 1,
    verdict: 'blocked', bundle: 'whatsapp', rule: `${src.dir}/whatsapp.txt:3`, node: 'node-a', rcode: 0, upstream: null, latency_ms: null,
  });
  t.match(raw[3], { qname: 'telegram.org', qtype: 28, bundle: 'telegram', rule: `${src.dir}/telegram.txt:1` });
  t.match(raw[4], { client: '192.168.1.40', client_name: '', grp: 'default', qname: 'www.icq.com', bundle: 'icq' });
  t.same(rows(dir, 'SELECT qname FROM domains ORDER BY qname').map((r) => (r as { qname: string }).qname), ['telegram.org', 'web.whatsapp.com', 'www.icq.com'], 'each name once');
  t.same(rows(dir, 'SELECT DISTINCT typeof(client) AS c, typeof(domain) AS d FROM queries'), [{ c: 'integer', d: 'integer' }], 'rows refer to names by id');
  const hourly = rows<Record<string, unknown>>(dir, `SELECT h.hour, c.address, g.text AS grp, b.text AS bundle, v.name AS verdict, count, ${TIMES}
    FROM hourly h JOIN clients c ON c.id = h.client JOIN labels g ON g.id = h.grp JOIN labels b ON b.id = h.bundle JOIN verdicts v ON v.id = h.verdict
    ORDER BY h.hour, c.address, bundle, verdict`);
  const hour = Math.floor(T0 / HOUR);
  t.same(hourly, [
    { hour, address: '192.168.1.23', grp: 'kids', bundle: '', verdict: 'cached', count: 2, first: T0 + 10_003, last: T0 + 10_004 },
    { hour, address: '192.168.1.23', grp: 'kids', bundle: '', verdict: 'forwarded', count: 3, first: T0 + 10_000, last: T0 + 10_002 },
    { hour, address: '192.168.1.23', grp: 'kids', bundle: 'telegram', verdict: 'blocked', count: 1, first: T0 + 5000, last: T0 + 5000 },
    { hour, address: '192.168.1.23', grp: 'kids', bundle: 'whatsapp', verdict: 'blocked', count: 3, first: T0, last: T0 + 2000 },
    { hour: hour + 1, address: '192.168.1.40', grp: 'default', bundle: 'icq', verdict: 'blocked', count: 1, first: T0 + HOUR, last: T0 + HOUR },
  ], 'hourly roll-ups per (client, group, bundle, verdict)');
});

t.test('blocked mode: counts without raw rows, from 300 clients over three hours and several hand-overs, add up per (hour, client, verdict)', async (t) => {
  const dir = stateDir(t);
  const h = history(dir, { flushMs: 3_600_000 });
  const want = new Map<string, { count: number; first: number; last: number }>();
  const verdicts = ['forwarded', 'cached', 'servfail'] as const;
  for (let i = 0; i < 3000; i++) {
    // Hours interleave now and then (an event of the hour before arriving late).
    const at = T0 + Math.floor(i / 1000) * HOUR + (i % 7 === 0 && i > 1000 ? -HOUR : 0) + i;
    const client = `10.0.${i % 3}.${i % 100}`;
    const verdict = verdicts[i % 3]!;
    h.answered(src.event(client, `n${i % 10}.example.org`, 1, at, verdict));
    const key = `${Math.floor(at / HOUR)} ${client} ${verdict}`;
    const cell = want.get(key);
    if (cell === undefined) want.set(key, { count: 1, first: at, last: at });
    else {
      cell.count++;
      cell.first = Math.min(cell.first, at);
      cell.last = Math.max(cell.last, at);
    }
    if (i % 700 === 699) h.flush();
  }
  await h.close();
  const got = rows<{ hour: number; address: string; verdict: string; count: number; first: number; last: number }>(dir,
    `SELECT h.hour, c.address, v.name AS verdict, count, ${TIMES} FROM hourly h JOIN clients c ON c.id = h.client JOIN verdicts v ON v.id = h.verdict`);
  t.equal(got.length, want.size, 'one roll-up row per (hour, client, verdict)');
  t.same(Object.fromEntries(got.map((r) => [`${r.hour} ${r.address} ${r.verdict}`, { count: r.count, first: r.first, last: r.last }])), Object.fromEntries(want),
    'each with its count, first and last');
  t.same(rows(dir, 'SELECT count(*) AS n FROM queries'), [{ n: 0 }], 'and no raw rows');
});

t.test('the DoH canary (blocked without a rule) is counted apart: no attempt in reports, a raw row of its own with --history all', async (t) => {
  for (const mode of ['blocked', 'all'] as const) {
    const dir = stateDir(t);
    const h = history(dir, { mode });
    h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0));
    // What the guard answers for use-application-dns.net: blocked, no rule.
    for (let i = 0; i < 3; i++) h.answered(src.event('192.168.1.40', 'use-application-dns.net', 1, T0 + 1 + i, 'blocked'));
    await h.close();
    t.same(rows(dir, 'SELECT v.name AS verdict, sum(count) AS n FROM hourly h JOIN verdicts v ON v.id = h.verdict GROUP BY v.name ORDER BY v.name'),
      [{ verdict: 'blocked', n: 1 }, { verdict: 'canary', n: 3 }], `${mode}: the canary in the roll-ups, apart`);
    t.same(rows(dir, 'SELECT qname, verdict FROM attempts ORDER BY time'),
      mode === 'all' ? [{ qname: 'web.whatsapp.com', verdict: 'blocked' }, ...Array(3).fill({ qname: 'use-application-dns.net', verdict: 'canary' })] : [{ qname: 'web.whatsapp.com', verdict: 'blocked' }],
      `${mode}: raw rows`);
    const db = openReader(join(dir, DB_FILE));
    t.same(report(db, { since: T0 - HOUR, until: T0 + HOUR, by: 'client' }).rows.map((r) => [r.key, r.count]), [['192.168.1.23', 1]], `${mode}: the canary's asker is not in the report`);
    db.close();
  }
});

t.test('all mode: every query with verdict, rcode, upstream and latency', async (t) => {
  const dir = stateDir(t);
  const h = history(dir, { mode: 'all' });
  t.equal(h.wantsTiming, true, 'asks the pipeline for timing');
  h.answered(src.event('10.1.1.1', 'www.example.org', 1, T0, 'forwarded'));
  h.answered(src.event('10.1.1.1', 'broken.example.org', 1, T0 + 1, 'servfail'));
  h.answered(src.event('10.1.1.1', 'www.example.org', 1, T0 + 2, 'cached'));
  h.answered(src.event('10.1.1.1', 't.me', 1, T0 + 3));
  await h.close();
  t.match(rows(dir, 'SELECT qname, verdict, rcode, upstream, latency_ms, bundle, rule FROM attempts ORDER BY time'), [
    { qname: 'www.example.org', verdict: 'forwarded', rcode: 0, upstream: '127.0.0.1:5300', latency_ms: 3.5, bundle: null },
    { qname: 'broken.example.org', verdict: 'servfail', rcode: 2, upstream: '127.0.0.1:5300' },
    { qname: 'www.example.org', verdict: 'cached', upstream: null },
    { qname: 't.me', verdict: 'blocked', bundle: 'telegram', rule: `${src.dir}/telegram.txt:3`, latency_ms: 0.05 },
  ]);
  t.equal(rows(dir, 'SELECT * FROM queries').length, 4);
  t.same(rows(dir, 'SELECT sum(count) AS n FROM hourly'), [{ n: 4 }], 'roll-ups count the raw rows, not twice');
});

t.test('restart: close, reopen, write more; the report counts both runs, from roll-ups and raw rows alike', async (t) => {
  const dir = stateDir(t);
  const feed = async (from: number): Promise<void> => {
    const h = history(dir);
    for (let i = 0; i < 300; i++) h.answered(src.event(`192.168.1.${i % 3}`, i % 2 ? 'mmg.whatsapp.net' : 'telegram.org', 1, from + i * 60_000));
    await h.close();
  };
  await feed(T0);
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  const whole = { since: T0 - DAY, until: T0 + 30 * DAY, by: 'client' as const };
  t.same(report(db, whole).rows.map((r) => r.count), [100, 100, 100], 'first run');
  await feed(T0 + 2 * DAY);
  const after = report(db, whole);
  t.same(after.rows.map((r) => [r.key, r.count]), [['192.168.1.0', 200], ['192.168.1.1', 200], ['192.168.1.2', 200]], 'both runs, read while open');
  t.equal(rows(dir, 'SELECT * FROM queries').length, 600);
  // A range that cuts hours: whole hours from roll-ups, the ends from raw rows; compare with a count of raw rows.
  const since = T0 + 37 * 60_000 + 17_000;
  const until = T0 + 2 * DAY + 211 * 60_000 + 5_000;
  for (const by of ['client', 'bundle', 'domain', 'group', 'day', 'hour'] as const) {
    const total = report(db, { since, until, by }).rows.reduce((a, r) => a + r.count, 0);
    const expected = rows<{ n: number }>(dir, 'SELECT sum(count) AS n FROM queries WHERE id >= ? AND id < ?', since * 1000, until * 1000)[0]!.n;
    t.equal(total, expected, `by ${by}: ${expected} attempts in a range that cuts hours`);
  }
  const byBundle = report(db, { ...whole, by: 'bundle', client: '192.168.1.1' });
  t.same(byBundle.rows.map((r) => [r.key, r.count]), [['telegram', 100], ['whatsapp', 100]], 'by bundle for one client');
});

t.test('kill -9 loses at most the last batch; the database stays whole', async (t) => {
  const dir = stateDir(t);
  const flushMs = 500;
  const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, '..', 'fixtures', 'history-child.ts'),
    JSON.stringify({ scenario: 'kill', stateDir: dir, flushMs, retryMs: 1000 })], { stdio: ['ignore', 'pipe', 'inherit'] });
  let last = { fed: 0, written: 0 };
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) last = JSON.parse(line) as typeof last;
  });
  await until('the child to write 1500 rows', () => last.written >= 1500, 30_000);
  await sleep(Math.random() * flushMs);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // Events fed at the kill: what it last printed, plus at most one tick's 50 it had not printed yet.
  // A raw row may hold several identical attempts of one second (queries.count).
  const stored = rows<{ n: number }>(dir, 'SELECT sum(count) AS n FROM queries')[0]!.n;
  const lost = last.fed - stored;
  t.ok(lost >= -50, `no more rows than events (${stored} stored, ${last.fed} fed)`);
  // At 1000 events/s: what waited for the next flush (<= flushMs), plus the batch being written.
  t.ok(lost <= 2 * flushMs + 50, `lost ${lost} events: at most about one batch (${flushMs} ms at 1000/s)`);
  const db = new Database(join(dir, DB_FILE));
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check ok after kill -9');
  const reported = report(db, { since: 0, until: Date.now() + DAY, by: 'client' }).rows.reduce((a, r) => a + r.count, 0);
  t.equal(reported, stored, 'the report (roll-ups) counts exactly the raw rows: both are in one transaction');
});

t.test('--workers: two processes send their batches over IPC to the one writer thread of the primary', async (t) => {
  const dir = stateDir(t);
  const thread = new WriterThread({ stateDir: dir, days: 90, queueLimit: 10_000, retryMs: 1000 }, { warn: (m) => t.fail(m), info: () => undefined });
  const workers = ['10.0.0.1', '10.0.0.2'].map((client) => fork(join(import.meta.dirname, '..', 'fixtures', 'history-child.ts'),
    [JSON.stringify({ scenario: 'sink', stateDir: dir, flushMs: 50, retryMs: 1000, client })],
    { execArgv: process.execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  for (const w of workers) w.on('message', (m: { history: Batch }) => thread.write(m.history));
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  await thread.close();
  t.same(rows(dir, 'SELECT client, count(DISTINCT node) AS nodes, sum(count) AS n FROM attempts GROUP BY client'),
    [{ client: '10.0.0.1', nodes: 1, n: 100 }, { client: '10.0.0.2', nodes: 1, n: 100 }], 'every blocked attempt of both, with the node that answered');
  t.same(rows(dir, 'SELECT verdict, sum(count) AS n FROM hourly GROUP BY verdict ORDER BY verdict'), [{ verdict: 0, n: 200 }, { verdict: 1, n: 100 }], 'roll-ups of both');
});

t.test('a sink that throws (IPC closed while shutting down): rows counted as dropped, one line, no throw', async (t) => {
  const warns: string[] = [];
  const h = history(stateDir(t), { flushMs: 60_000, log: { warn: (m) => warns.push(m), info: () => undefined },
    sink: { write: () => { throw new Error('Channel closed'); } } });
  for (let round = 0; round < 3; round++) {
    h.answered(src.event('10.0.0.9', 't.me', 1, T0 + round));
    t.doesNotThrow(() => h.flush());
  }
  await h.close();
  t.equal(h.figures().dropped, 3);
  t.same(warns, ['history: cannot hand a batch on (Channel closed); its 1 rows are dropped']);
});

t.test('retention: raw rows older than --history-days and roll-ups older than twice that are deleted', async (t) => {
  const dir = stateDir(t);
  let now = T0;
  const h = history(dir, { days: 10, now: () => now });
  // 25 days of attempts, one an hour, 600 in all (more than a retention chunk: several chunks).
  for (let i = 0; i < 600; i++) h.answered(src.event('192.168.1.9', 'web.whatsapp.com', 1, T0 - 25 * DAY + i * HOUR));
  for (let i = 0; i < 3000; i++) h.answered(src.event('192.168.1.9', 'www.icq.com', 1, T0 - 15 * DAY + i));
  h.flush();
  await until('rows written', () => h.figures().written === 3600);
  const deleted = await h.retain();
  // The 3,000 attempts 1 ms apart are identical: one row per second, 3 rows.
  t.equal(deleted, 3 + 360 + 120 + 5 + 5, 'raw rows older than 10 days (3 + 360); roll-ups older than 20 days: 120 hourly, 5 daily, 5 daily per name');
  t.same(rows(dir, 'SELECT min(id) / 1000 >= ? AS ok, count(*) AS n FROM queries', T0 - 10 * DAY), [{ ok: 1, n: 240 }], 'the last 10 days kept');
  t.same(rows(dir, 'SELECT count(*) AS n, sum(count) AS c FROM hourly'), [{ n: 481, c: 3480 }], 'roll-ups of the last 20 days kept');
  now = T0 + 10 * DAY;
  t.equal(await h.retain(), 240 + 241 + 11 + 11, 'ten days later: raw rows all gone; roll-ups older than 20 days gone (241 hourly, 11 daily, 11 daily per name)');
  t.same(rows(dir, 'SELECT count(*) AS n FROM queries'), [{ n: 0 }]);
  t.same(rows(dir, 'SELECT min(hour) >= ? AS ok, count(*) AS n FROM hourly', Math.floor((now - 20 * DAY) / HOUR)), [{ ok: 1, n: 240 }]);
  // A day's roll-up goes only when the whole day is older: the cutoff's day (14 attempts before 14:20) stays.
  t.same(rows(dir, 'SELECT min(day) = ? AS ok, sum(count) AS n FROM daily', Math.floor((now - 20 * DAY) / DAY)), [{ ok: 1, n: 240 + 14 }]);
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  t.equal(report(db, { since: now - 30 * DAY, until: now, by: 'client' }).rows[0]!.count, 254, 'reports count what only roll-ups hold (whole days from the daily roll-ups)');
  await h.close();
});

t.test('qnames longer than a slot of the ring, in a ring that wraps, are stored whole and in order', async (t) => {
  const dir = stateDir(t);
  // Capacity 4: six attempts wrap the ring and drop the two oldest.
  const h = history(dir, { queueLimit: 4, flushMs: 60_000 });
  const long = (i: number): string => `${'a'.repeat(60)}${i}.${'b'.repeat(50)}.web.whatsapp.com`;
  const names = [long(0), 'web.whatsapp.com', long(2), 'telegram.org', long(4), 'www.icq.com'];
  names.forEach((name, i) => h.answered(src.event('192.168.1.5', name, 1, T0 + i)));
  await h.close();
  t.same(rows(dir, 'SELECT qname FROM attempts ORDER BY time').map((r) => (r as { qname: string }).qname), names.slice(2), 'the newest four, long names whole');
  t.same(rows(dir, 'SELECT sum(count) AS n FROM hourly'), [{ n: 6 }], 'the two dropped still counted');
});

t.test('a writer thread that cannot keep up: the rows of a hand-over become counts on the DNS thread instead', async (t) => {
  const dir = stateDir(t);
  const h = history(dir, { queueLimit: 1000, flushMs: 60_000 });
  h.describeClient = (a) => (a === '192.168.1.23' ? { name: 'laptop-7', group: 'kids' } : { name: '', group: 'default' });
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0));
  h.flush();
  await until('the first row written', () => h.figures().written === 1);
  // As the writer reports it when more than half the queue waits for it (set here, in the same
  // turn as the hand-over, so no message from the thread can overwrite it first).
  h.thread!.stats = { ...h.thread!.stats, pendingRows: 501 };
  for (let i = 0; i < 30; i++) h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0 + 1000 + i));
  for (let i = 0; i < 10; i++) h.answered(src.event('192.168.1.40', 'telegram.org', 1, T0 + HOUR + i));
  h.flush();
  t.equal(h.figures().dropped, 40, 'the 40 rows are dropped and counted');
  h.thread!.stats = { ...h.thread!.stats, pendingRows: 0 };
  h.answered(src.event('192.168.1.40', 'www.icq.com', 1, T0 + 2 * HOUR));
  await h.close();
  t.same(rows(dir, 'SELECT count(*) AS n FROM queries'), [{ n: 2 }], 'raw rows: the first and the last, handed over while the writer kept up');
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  const r = report(db, { since: T0 - HOUR, until: T0 + 3 * HOUR, by: 'bundle' });
  t.same(r.rows.map((x) => [x.key, x.count, x.first, x.last]), [
    ['whatsapp', 31, new Date(T0).toISOString(), new Date(T0 + 1029).toISOString()],
    ['telegram', 10, new Date(T0 + HOUR).toISOString(), new Date(T0 + HOUR + 9).toISOString()],
    ['icq', 1, new Date(T0 + 2 * HOUR).toISOString(), new Date(T0 + 2 * HOUR).toISOString()],
  ], 'reports count every attempt, with first and last');
  t.same(report(db, { since: T0 - HOUR, until: T0 + 3 * HOUR, by: 'client' }).rows.map((x) => [x.key, x.name, x.count]),
    [['192.168.1.23', 'laptop-7', 31], ['192.168.1.40', null, 11]], 'by client, with names');
});

t.test('batches posted and not yet read by the writer thread count as waiting: a starved thread is behind', async (t) => {
  const dir = stateDir(t);
  const h = history(dir, { queueLimit: 1000, flushMs: 60_000 });
  // All in one turn of this thread: the writer thread cannot have read anything yet, as when
  // SCHED_IDLE keeps it off a core the DNS thread keeps busy (its own figures then say nothing waits).
  for (let i = 0; i < 600; i++) h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0 + i * 1000));
  h.flush();
  t.equal(h.thread!.inFlight(), 600, '600 rows posted, none read');
  t.equal(h.figures().queued, 600, 'the queue figure counts them');
  for (let i = 0; i < 40; i++) h.answered(src.event('192.168.1.40', 'telegram.org', 1, T0 + HOUR + i));
  h.flush();
  t.equal(h.figures().dropped, 40, 'more than half the limit waits unread: the next 40 rows become counts');
  await until('the thread read and wrote the 600', () => h.figures().written === 600);
  t.equal(h.thread!.inFlight(), 0, 'nothing in flight once it has read them');
  await h.close();
  t.same(rows(dir, 'SELECT count(*) AS n FROM queries'), [{ n: 600 }], '600 raw rows');
  t.same(rows(dir, 'SELECT sum(count) AS n FROM hourly'), [{ n: 640 }], 'and every attempt counted');
});

t.test('a sink that says its writer is behind (--workers: the primary process tells each worker) gets counts instead of rows', async (t) => {
  const batches: Batch[] = [];
  let behind = false;
  const h = history(stateDir(t), { flushMs: 60_000, sink: { write: (b) => batches.push(b), behind: () => behind } });
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0));
  h.flush();
  behind = true;
  for (let i = 0; i < 20; i++) h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0 + 10 + i));
  h.flush();
  behind = false;
  h.answered(src.event('192.168.1.23', 'telegram.org', 1, T0 + 50));
  h.flush();
  await h.close();
  t.same(batches.map((b) => b.rows.n), [1, 0, 1], 'raw rows while the writer keeps up; none while it is behind');
  const counted = batches[1]!.rollups.filter((c) => c.client === '192.168.1.23' && c.bundle === 'whatsapp').reduce((a, c) => a + c.count, 0);
  t.equal(counted, 20, 'the 20 attempts go as counts');
  t.equal(h.figures().dropped, 20, 'and are counted as dropped rows');
});

t.test('a full queue drops the oldest raw rows but keeps their counts', async (t) => {
  const dir = stateDir(t);
  const h = history(dir, { queueLimit: 100, flushMs: 60_000 });
  for (let i = 0; i < 250; i++) h.answered(src.event('192.168.1.5', 'telegram.org', 1, T0 + i));
  t.same(h.figures(), { databaseBytes: 0, queued: 100, dropped: 150, writeErrors: 0, written: 0 });
  const sink = new MetricsSink();
  h.collect(sink);
  t.same(sink.families.map((f) => [f.name, f.type, f.samples[0]!.value]), [
    ['sinkhole_history_database_bytes', 'gauge', 0], ['sinkhole_history_queued_rows', 'gauge', 100], ['sinkhole_history_dropped_rows_total', 'counter', 150],
    ['sinkhole_history_write_errors_total', 'counter', 0], ['sinkhole_history_written_rows_total', 'counter', 0],
  ], 'the same figures as metrics');
  await h.close();
  t.same(rows(dir, 'SELECT sum(count) AS n, min(id) / 1000 AS first FROM queries'), [{ n: 100, first: T0 + 150 }], 'the newest 100 kept');
  t.same(rows(dir, 'SELECT sum(count) AS n FROM hourly'), [{ n: 250 }], 'all 250 counted');
  t.equal(h.figures().dropped, 150);
  t.ok(h.figures().databaseBytes > 0, 'database size reported');
});

t.test('a state folder that cannot be made: one line, no throw, retried until it can', async (t) => {
  const dir = stateDir(t);
  const blocker = join(dir, 'state');
  writeFileSync(blocker, 'a file where the folder should be\n');
  const warns: string[] = [];
  const infos: string[] = [];
  const h = history(join(blocker, 'history'), { retryMs: 200, log: { warn: (m) => warns.push(m), info: (m) => infos.push(m) } });
  for (let round = 0; round < 5; round++) {
    t.doesNotThrow(() => h.answered(src.event('192.168.1.7', 'web.whatsapp.com', 1, T0 + round)));
    h.flush();
    await sleep(60);
  }
  await until('a write error', () => h.figures().writeErrors > 0);
  t.equal(warns.length, 1, 'one line however many tries');
  t.match(warns[0], new RegExp(`^history: cannot write ${blocker}/history/history.sqlite \\(ENOTDIR: .*\\); DNS keeps answering, history retries every 200 ms: check free space and permissions of --state-dir$`));
  rmSync(blocker);
  mkdirSync(blocker);
  await until('the retry to succeed', () => h.figures().written === 5, 3000);
  t.match(infos, [/^history: writing .* again/], 'says once that it writes again');
  await h.close();
  t.equal(rows(join(blocker, 'history'), 'SELECT * FROM queries').length, 5, 'the rows kept while failing are written');
});

/** Runs the child in a mount namespace with a small tmpfs as its state folder. */
function inTmpfs(t: Test, scenario: 'full' | 'readonly'): Record<string, unknown>[] | null {
  const dir = stateDir(t);
  const mount = scenario === 'full' ? `mount -t tmpfs -o size=2m tmpfs ${dir}` : `mount -t tmpfs -o size=1m,ro tmpfs ${dir}`;
  const node = [process.execPath, ...process.execArgv, join(import.meta.dirname, '..', 'fixtures', 'history-child.ts'),
    JSON.stringify({ scenario, stateDir: dir, flushMs: 100, retryMs: 300 })].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `${mount} && exec ${node}`], { encoding: 'utf8', timeout: 60_000 });
  if (r.error || (r.status !== 0 && /unshare|mount/.test(r.stderr))) {
    const why = `unshare -m with a tmpfs is not available here: ${r.error?.message ?? r.stderr.trim()}`;
    t.notOk(process.env.CI === 'true', `in CI, ${why}`);
    t.comment(`skipped: ${why}`);
    return null;
  }
  t.equal(r.status, 0, `child exited cleanly ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('disk full (tmpfs of 2 MB): no throw, the event loop is not held up, writes resume when space returns', async (t) => {
  const steps = inTmpfs(t, 'full');
  if (steps === null) return;
  const [failing, recovered, closed] = steps;
  t.match(failing, { step: 'failing', writeErrors: Number, threw: 0 });
  t.ok((failing!.writeErrors as number) > 0, 'a write failed');
  t.match(failing!.warns, [/^history: cannot write .*history\.sqlite \((SQLITE_FULL|ENOSPC|SQLITE_IOERR\w*): .*check free space and permissions of --state-dir$/]);
  t.equal((failing!.warns as string[]).length, 1, 'one line');
  // The writer's work is on its own thread: handing a batch over is all this thread does.
  // Median, not maximum: on 2 shared cores any call can be descheduled for tens of ms.
  t.ok((failing!.medianFlush as number) < 5, `handing a batch to the writer took ${(failing!.medianFlush as number).toFixed(2)} ms (median; max ${(failing!.slowestFlush as number).toFixed(1)} ms)`);
  t.comment(`largest event-loop delay besides feeding events: ${(failing!.lag as number).toFixed(1)} ms (2 shared cores)`);
  t.match(recovered, { step: 'recovered', threw: 0, infos: [/^history: writing .* again/] });
  t.match(recovered, { queued: 0, dropped: 0 }, 'everything kept while the disk was full is written');
  t.ok((recovered!.written as number) > (failing!.written as number), `rows written again (${failing!.written} then ${recovered!.written})`);
  t.match(closed, { step: 'closed', threw: 0 });
});

t.test('read-only state folder (read-only tmpfs): one line, no throw', async (t) => {
  const steps = inTmpfs(t, 'readonly');
  if (steps === null) return;
  const [failing, closed] = steps;
  t.match(failing, { step: 'failing', threw: 0, written: 0 });
  t.match(failing!.warns, [/^history: cannot write .*history\.sqlite \(\w+: .*\); DNS keeps answering/]);
  t.equal((failing!.warns as string[]).length, 1, 'one line');
  t.match(closed, { step: 'closed', threw: 0, written: 0 });
});
