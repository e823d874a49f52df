// Folding: identical blocked attempts (client, qname, qtype, group, bundle, rule, node) in the
// same second of a batch are one raw row with a count. Reports add the counts exactly (from
// roll-ups and from raw rows alike), the search shows the count, and a database written by
// an older server (no count column) is still read, then migrated by the writer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { History } from '../../src/observe/history/history.js';
import { report, REPORT_BY } from '../../src/observe/history/report.js';
import { DB_FILE, openReader, SCHEMA_VERSION } from '../../src/observe/history/schema.js';
import { searchAttempts } from '../../src/observe/history/search.js';
import { eventSource, readRows } from '../helpers/history.js';

const HOUR = 3_600_000;
const src = await eventSource();
// 2026-11-03 14:20 UTC.
const T0 = Date.UTC(2026, 10, 3, 14, 20);

function stateDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-fold-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function history(dir: string): History {
  const h = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'gw1', log: { warn: (m) => t.fail(m), info: () => undefined } });
  h.describeClient = (a) => (a === '192.168.1.23' ? { name: 'laptop-7', group: 'kids' } : { name: '', group: 'default' });
  return h;
}

/** A messenger retried: 50 times in one second, 7 in the next, and neighbours that must not fold. */
async function retries(dir: string, at = T0): Promise<void> {
  const h = history(dir);
  for (let i = 0; i < 50; i++) h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, at + 10 + i * 19));
  for (let i = 0; i < 7; i++) h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, at + 1000 + i * 100));
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 28, at + 500)); // another qtype
  h.answered(src.event('192.168.1.40', 'web.whatsapp.com', 1, at + 600)); // another client
  h.answered(src.event('192.168.1.23', 'mmg.whatsapp.net', 1, at + 700)); // another name
  h.answered(src.event('192.168.1.23', 'telegram.org', 1, at + 800)); // another bundle
  await h.close();
}


t.test('identical attempts in one second are one row with their count; the others are not folded', async (t) => {
  const dir = stateDir(t);
  await retries(dir);
  const raw = readRows<{ ms: number; client: string; qname: string; qtype: number; count: number; span: number }>(dir,
    'SELECT q.id / 1000 AS ms, c.address AS client, d.qname, q.qtype, q.count, q.span FROM queries q ' +
    'JOIN clients c ON c.id = q.client JOIN domains d ON d.id = q.domain ORDER BY q.id');
  t.same(raw.map((r) => [new Date(r.ms).toISOString(), r.client, r.qname, r.qtype, r.count, r.span]), [
    ['2026-11-03T14:20:00.010Z', '192.168.1.23', 'web.whatsapp.com', 1, 50, 49 * 19],
    ['2026-11-03T14:20:00.500Z', '192.168.1.23', 'web.whatsapp.com', 28, 1, 0],
    ['2026-11-03T14:20:00.600Z', '192.168.1.40', 'web.whatsapp.com', 1, 1, 0],
    ['2026-11-03T14:20:00.700Z', '192.168.1.23', 'mmg.whatsapp.net', 1, 1, 0],
    ['2026-11-03T14:20:00.800Z', '192.168.1.23', 'telegram.org', 1, 1, 0],
    ['2026-11-03T14:20:01.000Z', '192.168.1.23', 'web.whatsapp.com', 1, 7, 600],
  ], 'first time, count and span (ms to the last) of each row');
  t.same(readRows(dir, 'SELECT count(*) AS n, sum(count) AS c FROM queries'), [{ n: 6, c: 61 }], '61 attempts in 6 rows');
});

t.test('attempts of two clients interleaved in one second fold per client; a new second starts new rows', async (t) => {
  const dir = stateDir(t);
  const h = history(dir);
  // The writer keeps, per name, every row of the batch so far (newest first): an attempt
  // folds into whichever matches, not only into the newest.
  for (let i = 0; i < 6; i++) h.answered(src.event(i % 2 === 0 ? '192.168.1.23' : '192.168.1.40', 'web.whatsapp.com', 1, T0 + 100 + i * 10));
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 28, T0 + 200));
  h.answered(src.event('192.168.1.40', 'web.whatsapp.com', 1, T0 + 300));
  h.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0 + 1100));
  await h.close();
  const raw = readRows<{ ms: number; client: string; qtype: number; count: number; span: number }>(dir,
    'SELECT q.id / 1000 AS ms, c.address AS client, q.qtype, q.count, q.span FROM queries q JOIN clients c ON c.id = q.client ORDER BY q.id');
  t.same(raw.map((r) => [r.ms - T0, r.client, r.qtype, r.count, r.span]), [
    [100, '192.168.1.23', 1, 3, 40],
    [110, '192.168.1.40', 1, 4, 190],
    [200, '192.168.1.23', 28, 1, 0],
    [1100, '192.168.1.23', 1, 1, 0],
  ], 'ms after T0, client, qtype, count, span of each row');
});

t.test('reports add the counts exactly, from roll-ups and from raw rows alike', async (t) => {
  const dir = stateDir(t);
  await retries(dir);
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  // Whole hours and days from roll-ups; a range of minutes around the attempts from raw rows only.
  for (const [what, since, until] of [['roll-ups', T0 - 3 * 24 * HOUR, T0 + 3 * 24 * HOUR], ['raw rows', T0 - 60_000, T0 + 60_000]] as const) {
    for (const by of REPORT_BY) {
      const r = report(db, { since, until, by });
      t.equal(r.rows.reduce((a, row) => a + row.count, 0), 61, `${what}, by ${by}: 61`);
    }
    const byClient = report(db, { since, until, by: 'client' }).rows;
    t.same(byClient.map((r) => [r.key, r.count, r.first, r.last]), [
      ['192.168.1.23', 60, '2026-11-03T14:20:00.010Z', '2026-11-03T14:20:01.600Z'],
      ['192.168.1.40', 1, '2026-11-03T14:20:00.600Z', '2026-11-03T14:20:00.600Z'],
    ], `${what}: counts, first and last (the last of a folded row is its first time + span)`);
    t.same(report(db, { since, until, by: 'domain', client: 'laptop-7' }).rows.map((r) => [r.key, r.count]),
      [['web.whatsapp.com', 58], ['mmg.whatsapp.net', 1], ['telegram.org', 1]], `${what}: by domain for one client`);
  }
});

t.test('the search lists a folded row once, with its count', async (t) => {
  const dir = stateDir(t);
  await retries(dir);
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  const page = searchAttempts(db, { since: T0 - HOUR, until: T0 + HOUR, client: 'laptop-7', name: 'web.whatsapp', limit: 50 });
  t.same(page.rows.map((r) => [r.time, r.qtype, r.count]), [
    ['2026-11-03T14:20:01.000Z', 'A', 7], ['2026-11-03T14:20:00.500Z', 'AAAA', 1], ['2026-11-03T14:20:00.010Z', 'A', 50],
  ]);
  const all = searchAttempts(db, { since: T0 - HOUR, until: T0 + HOUR, limit: 50 });
  t.equal(all.rows.reduce((a, r) => a + r.count, 0), 61, 'the counts of a page add up to the attempts');
});

t.test('a database written by an older server (no count column) is read, then migrated by the writer', async (t) => {
  const dir = stateDir(t);
  await retries(dir);
  // Make it as schema 1 left it: one row per attempt, no count or span, the view without count.
  const old = new Database(join(dir, DB_FILE));
  old.exec('DELETE FROM queries WHERE count > 1; DROP VIEW attempts; ALTER TABLE queries DROP COLUMN count; ALTER TABLE queries DROP COLUMN span;' +
    "UPDATE meta SET value = '1' WHERE key = 'schema'");
  old.close();
  const reader = openReader(join(dir, DB_FILE));
  const raw = { since: T0 - 60_000, until: T0 + 60_000 };
  t.equal(report(reader, { ...raw, by: 'domain' }).rows.reduce((a, r) => a + r.count, 0), 4, 'report over old rows: one attempt each');
  t.same(searchAttempts(reader, { ...raw, limit: 50 }).rows.map((r) => r.count), [1, 1, 1, 1], 'search: count 1 each');
  reader.close();
  await retries(dir, T0 + 2000);
  t.same(readRows(dir, "SELECT value FROM meta WHERE key = 'schema'"), [{ value: String(SCHEMA_VERSION) }], 'the current schema after the writer opened it');
  t.same(readRows(dir, 'SELECT count(*) AS n, sum(count) AS c FROM queries'), [{ n: 4 + 6, c: 4 + 61 }], 'old rows count 1, new rows fold');
  t.same(readRows(dir, 'SELECT sum(count) AS c FROM attempts'), [{ c: 65 }], 'the view has the count again');
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  t.equal(report(db, { since: T0 - 60_000, until: T0 + 60_000, by: 'client' }).rows.reduce((a, r) => a + r.count, 0), 65, 'old and new rows add up');
});
