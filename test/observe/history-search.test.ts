// Search over single stored attempts (search.ts): real events through History into
// history.sqlite, then searchAttempts over the database opened read-only: every field,
// newest first, filters by client (address or name), name part, bundle and time, paging
// with `next`/`before` (also over many days, through the roll-ups), only blocked rows with
// --history all, and a schema 2 database with the search indexes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { History, type HistoryOptions } from '../../src/observe/history/history.js';
import { parseSearchArgs } from '../../src/observe/history/report-args.js';
import { DB_FILE, openReader, SCHEMA_VERSION } from '../../src/observe/history/schema.js';
import { searchAttempts, type SearchQuery } from '../../src/observe/history/search.js';
import { report, REPORT_BY } from '../../src/observe/history/report.js';
import { eventSource } from '../helpers/history.js';

const HOUR = 3_600_000;
const src = await eventSource();
// 2026-11-03 14:20 UTC.
const T0 = Date.UTC(2026, 10, 3, 14, 20);

async function written(t: Test, o: Partial<HistoryOptions> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-search-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const h = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'gw1', log: { warn: () => undefined, info: () => undefined }, ...o });
  h.describeClient = (a) => (a === '192.168.1.23' ? { name: 'laptop-7', group: 'kids' } : { name: '', group: 'default' });
  // 192.168.1.23: whatsapp at T0, T0+1s, T0+2s; telegram at T0+1h. 192.168.1.40: icq at T0+30m, web.whatsapp.com at T0+2h.
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0));
  h.answered(src.event('192.168.1.23', 'mmg.whatsapp.net', 28, T0 + 1000));
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0 + 2000));
  h.answered(src.event('192.168.1.40', 'www.icq.com', 1, T0 + HOUR / 2));
  h.answered(src.event('192.168.1.23', 'telegram.org', 1, T0 + HOUR));
  h.answered(src.event('192.168.1.23', 'www.example.org', 1, T0 + HOUR + 1, 'forwarded'));
  h.answered(src.event('192.168.1.40', 'web.whatsapp.com', 1, T0 + 2 * HOUR));
  await h.close();
  return dir;
}

function search(dir: string, q: Partial<SearchQuery> = {}): ReturnType<typeof searchAttempts> {
  const db = openReader(join(dir, DB_FILE));
  try {
    return searchAttempts(db, { since: T0 - HOUR, until: T0 + 3 * HOUR, limit: 50, ...q });
  } finally {
    db.close();
  }
}

const times = (p: ReturnType<typeof searchAttempts>): number[] => p.rows.map((r) => Date.parse(r.time) - T0);

t.test('every blocked attempt, newest first, with every field', async (t) => {
  const dir = await written(t);
  const page = search(dir);
  t.same(times(page), [2 * HOUR, HOUR, HOUR / 2, 2000, 1000, 0], 'blocked only, newest first');
  t.same(page.rows[1], {
    time: '2026-11-03T15:20:00.000Z', client: '192.168.1.23', name: 'laptop-7', group: 'kids', qname: 'telegram.org', qtype: 'A',
    bundle: 'telegram', rule: `${src.dir}/telegram.txt:1`, node: 'gw1', count: 1,
  });
  t.match(page.rows[4], { qname: 'mmg.whatsapp.net', qtype: 'AAAA', bundle: 'whatsapp', rule: `${src.dir}/whatsapp.txt:2` });
  t.match(page.rows[0], { client: '192.168.1.40', name: null, group: 'default' });
  t.equal(page.next, null, 'one page holds them all');
  t.equal(page.since, new Date(T0 - HOUR).toISOString());
});

t.test('filters: client by address or name, part of the name, bundle, time, and together', async (t) => {
  const dir = await written(t);
  t.same(times(search(dir, { client: '192.168.1.23' })), [HOUR, 2000, 1000, 0], 'by address');
  t.same(times(search(dir, { client: 'LAPTOP-7' })), [HOUR, 2000, 1000, 0], 'by name, any case');
  t.same(times(search(dir, { name: 'WhatsApp' })), [2 * HOUR, 2000, 1000, 0], 'by part of the name');
  t.same(times(search(dir, { name: 'web.whatsapp.com' })), [2 * HOUR, 2000, 0], 'by the whole name');
  t.same(times(search(dir, { bundle: 'whatsapp' })), [2 * HOUR, 2000, 1000, 0], 'by bundle');
  t.same(times(search(dir, { since: T0 + 1500, until: T0 + HOUR })), [HOUR / 2, 2000], 'by time: since inclusive, until exclusive');
  t.same(times(search(dir, { client: 'laptop-7', name: 'web.', bundle: 'whatsapp' })), [2000, 0], 'all together');
  t.same(times(search(dir, { client: '192.168.1.40', bundle: 'telegram' })), [], 'nothing matches');
  t.same(search(dir, { client: '10.9.9.9' }).rows, [], 'an unknown client');
  t.same(search(dir, { name: 'nothing-like-it' }).rows, [], 'an unknown name');
  t.same(search(dir, { bundle: 'kids' }).rows, [], 'a group is not a bundle');
});

t.test('pages: limit, next and before walk back through all of them without repeats', async (t) => {
  const dir = await written(t);
  const seen: number[] = [];
  let before: number | undefined;
  let pages = 0;
  for (;;) {
    const page = search(dir, { limit: 2, ...(before === undefined ? {} : { before }) });
    pages++;
    seen.push(...times(page));
    if (page.next === null) break;
    t.equal(page.rows.length, 2);
    before = Number(page.next);
  }
  t.equal(pages, 3);
  t.same(seen, [2 * HOUR, HOUR, HOUR / 2, 2000, 1000, 0], 'all six, in order, once each');
  const byClient = search(dir, { client: '192.168.1.23', limit: 3 });
  t.same(times(byClient), [HOUR, 2000, 1000]);
  t.same(times(search(dir, { client: '192.168.1.23', limit: 3, before: Number(byClient.next) })), [0], 'a filtered page goes on where it stopped');
});

t.test('--history all: the search lists blocked attempts only', async (t) => {
  const dir = await written(t, { mode: 'all' });
  t.same(times(search(dir, { client: 'laptop-7' })), [HOUR, 2000, 1000, 0]);
  t.same(times(search(dir, { name: 'example.org' })), [], 'the forwarded query is stored but not an attempt');
});

t.test('a client\'s or a name\'s attempts over many days and hours are found through the roll-ups, page by page', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-search-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const h = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'gw1', log: { warn: () => undefined, info: () => undefined } });
  const DAY = 24 * HOUR;
  const rare: number[] = [];
  for (let d = 0; d < 10; d++) {
    for (const hour of [1, 13, 22]) {
      const at = T0 - 14 * HOUR + d * DAY + hour * HOUR;
      // A busy client every time, a rare one (and a rare name) on some days and hours only.
      for (let i = 0; i < 20; i++) h.answered(src.event('192.168.1.50', 'web.whatsapp.com', 1, at + i * 1000));
      if (d % 3 === 0 && hour !== 22) {
        h.answered(src.event('192.168.1.77', 'telegram.org', 1, at + 1500));
        rare.push(at + 1500 - T0);
      }
    }
  }
  await h.close();
  const newestFirst = rare.reverse();
  const walk = (q: Partial<SearchQuery>): number[] => {
    const seen: number[] = [];
    let before: number | undefined;
    for (;;) {
      const page = search(dir, { since: T0 - 2 * DAY, until: T0 + 11 * DAY, limit: 3, ...q, ...(before === undefined ? {} : { before }) });
      seen.push(...times(page));
      if (page.next === null) return seen;
      before = Number(page.next);
    }
  };
  t.same(walk({ client: '192.168.1.77' }), newestFirst, 'by client: all 8, newest first, once each');
  t.same(walk({ name: 'telegram.org' }), newestFirst, 'by name: the same');
  t.same(walk({ client: '192.168.1.77', since: T0 + 2 * DAY, until: T0 + 7 * DAY }), newestFirst.filter((x) => x >= 2 * DAY && x < 7 * DAY), 'within a range');
  t.equal(walk({ client: '192.168.1.50' }).length, 600, 'the busy client: every attempt');
});

t.test('a schema 2 database (search indexes, roll-up times since 1970) is searched and reported as it is, and the writer migrates it', async (t) => {
  const dir = await written(t);
  const db = new Database(join(dir, DB_FILE));
  for (const i of ['client', 'domain']) db.exec(`CREATE INDEX queries_${i} ON queries (${i}) WHERE verdict = 0`);
  // Schema 2's roll-ups: first and last in ms since 1970.
  for (const [table, unit, ms] of [['hourly', 'hour', HOUR], ['daily', 'day', 24 * HOUR], ['daily_domains', 'day', 24 * HOUR]] as const) {
    db.exec(`CREATE TABLE ${table}_old AS SELECT * FROM ${table}; DROP TABLE ${table}; ALTER TABLE ${table}_old RENAME TO ${table};` +
      `ALTER TABLE ${table} RENAME COLUMN span TO last; UPDATE ${table} SET first = ${unit} * ${ms} + first, last = ${unit} * ${ms} + first + last`);
  }
  db.exec("UPDATE meta SET value = '2' WHERE key = 'schema'");
  db.close();
  t.same(times(search(dir, { client: 'laptop-7', bundle: 'whatsapp' })), [2000, 1000, 0]);
  t.same(times(search(dir, { name: 'web.whatsapp.com' })), [2 * HOUR, 2000, 0]);
  // Ranges that take whole days and hours from the roll-ups, in every grouping.
  const reports = (): unknown[] => {
    const r = openReader(join(dir, DB_FILE));
    try {
      return REPORT_BY.map((by) => report(r, { since: T0 - 3 * 24 * HOUR - 1234, until: T0 + 3 * 24 * HOUR + 1234, by }));
    } finally {
      r.close();
    }
  };
  const before = reports();
  t.equal((before[0] as { rows: { count: number }[] }).rows.reduce((a, r) => a + r.count, 0), 6, 'the old roll-ups are read');
  const h = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'gw1', log: { warn: () => undefined, info: () => undefined } });
  h.describeClient = (a) => (a === '192.168.1.23' ? { name: 'laptop-7', group: 'kids' } : { name: '', group: 'default' });
  h.answered(src.event('192.168.1.23', 'telegram.org', 1, T0 + 2 * HOUR + 1));
  await h.close();
  const check = openReader(join(dir, DB_FILE));
  t.teardown(() => check.close());
  t.same(check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'queries_%'").all(), [], 'indexes dropped');
  t.same(check.prepare("SELECT value FROM meta WHERE key = 'schema'").get(), { value: String(SCHEMA_VERSION) });
  t.same(times(search(dir, { client: 'laptop-7' })), [2 * HOUR + 1, HOUR, 2000, 1000, 0], 'the same rows and the new one, through the roll-ups');
  t.same(check.prepare('SELECT hour, first, span FROM hourly WHERE hour = ? AND client = 1 AND bundle = (SELECT id FROM labels WHERE text = ?)').get(Math.floor(T0 / HOUR), 'whatsapp'),
    { hour: Math.floor(T0 / HOUR), first: T0 % HOUR, span: 2000 }, 'roll-ups moved to first from the hour\'s start and span');
  const after = reports() as { rows: { key: string; count: number }[] }[];
  const added = after.map((r) => r.rows.reduce((a, x) => a + x.count, 0));
  t.same(added, REPORT_BY.map(() => 7), 'every grouping: the 6 old attempts and the new one');
  // The old attempts' first and last are unchanged by the migration (the new one is on the same client, later).
  t.same((after[1]!.rows as unknown[]).find((r) => (r as { key: string }).key === 'whatsapp'), (before[1] as { rows: unknown[] }).rows.find((r) => (r as { key: string }).key === 'whatsapp'),
    'by bundle: whatsapp the same as before the migration');
});

t.test('the search reads the roll-ups and ranges of the raw rows by their key, never a whole table', async (t) => {
  const dir = await written(t);
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((p) => p.detail).join('; ');
  t.match(plan('SELECT min(first), max(first + span) FROM daily WHERE day = 1 AND client IN (1,2) AND verdict = 0'), /SEARCH daily USING PRIMARY KEY \(day=\? AND client=\?\)/);
  t.match(plan('SELECT min(first), max(first + span) FROM hourly WHERE hour = 1 AND client IN (1,2) AND verdict = 0'), /SEARCH hourly USING PRIMARY KEY \(hour=\? AND client=\?\)/);
  t.match(plan('SELECT min(first), max(first + span) FROM daily_domains WHERE day = 1 AND domain IN (1,2)'), /SEARCH daily_domains USING PRIMARY KEY \(day=\? AND domain=\?\)/);
  const raw = plan('SELECT * FROM queries WHERE id >= 0 AND id < 9e15 AND verdict = 0 AND client IN (1,2) ORDER BY id DESC LIMIT 51');
  t.match(raw, /SEARCH queries USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
  t.notMatch(raw, /TEMP B-TREE/, 'in key order, no sort');
});

t.test('parameters: defaults, limits, one-line errors', async (t) => {
  const now = T0;
  const args = (p: Record<string, string>) => parseSearchArgs((k) => p[k], now);
  t.match(args({}), { since: now - 7 * 24 * HOUR, until: now, limit: 50 });
  t.match(args({ client: ' laptop-7 ', name: 'whatsapp', bundle: 'whatsapp', limit: '500', before: '1762179600000000' }),
    { client: 'laptop-7', name: 'whatsapp', bundle: 'whatsapp', limit: 500, before: 1762179600000000 });
  t.match(args({ limit: '0' }), { error: /^limit: "0" is not a number from 1 to 500$/ });
  t.match(args({ limit: '501' }), { error: /^limit/ });
  t.match(args({ before: 'x' }), { error: /^before: "x" is not the "next" of an earlier page$/ });
  t.match(args({ since: 'yesterday' }), { error: /^since: "yesterday" is not a time/ });
  t.match(args({ since: '1d', until: '2d' }), { error: /^until .* must be after since/ });
});
