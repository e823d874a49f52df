// Names in the history database (schema 4): found by a hash of their text, told apart by the
// text when two share a hash, stored once; a schema 3 file (names under a UNIQUE index) is
// migrated by the writer with its ids unchanged, and read as it is before that.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { History } from '../../src/observe/history/history.js';
import { report } from '../../src/observe/history/report.js';
import { DB_FILE, openReader, qnameHash, SCHEMA_VERSION } from '../../src/observe/history/schema.js';
import { searchAttempts } from '../../src/observe/history/search.js';
import { eventSource, readRows } from '../helpers/history.js';

const src = await eventSource();
// 2026-11-03 14:20 UTC.
const T0 = Date.UTC(2026, 10, 3, 14, 20);
const RANGE = { since: T0 - 60_000, until: T0 + 3_600_000 };

function stateDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-domains-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes blocked attempts of 192.168.1.23 for `names`, one a second from `from`. */
async function attempts(dir: string, names: string[], from = T0): Promise<void> {
  const h = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'gw1', log: { warn: () => undefined, info: () => undefined } });
  names.forEach((name, i) => h.answered(src.event('192.168.1.23', name, 1, from + i * 1000)));
  await h.close();
}


function byDomain(dir: string): Record<string, number> {
  const db = openReader(join(dir, DB_FILE));
  try {
    return Object.fromEntries(report(db, { ...RANGE, by: 'domain' }).rows.map((r) => [r.key, r.count]));
  } finally {
    db.close();
  }
}

t.test('the hash of a name never changes (it is stored)', async (t) => {
  t.equal(qnameHash('web.whatsapp.com'), 187406049721118);
  t.equal(qnameHash(''), 2271358496018432);
  t.not(qnameHash('x1.a'), qnameHash('x1.b'));
  t.ok(Number.isSafeInteger(qnameHash('a'.repeat(253))), 'an exact integer');
});

t.test('a name is stored once, with its hash, and found again after a restart', async (t) => {
  const dir = stateDir(t);
  await attempts(dir, ['web.whatsapp.com', 'telegram.org', 'web.whatsapp.com']);
  await attempts(dir, ['telegram.org', 'www.icq.com'], T0 + 10_000);
  const rows = readRows<{ qname: string; hash: number }>(dir, 'SELECT qname, hash FROM domains ORDER BY id');
  t.same(rows.map((r) => r.qname), ['web.whatsapp.com', 'telegram.org', 'www.icq.com'], 'one row per name, across two writers');
  for (const r of rows) t.equal(r.hash, qnameHash(r.qname), `${r.qname}: its hash`);
  t.same(byDomain(dir), { 'web.whatsapp.com': 2, 'telegram.org': 2, 'www.icq.com': 1 });
  t.same(readRows(dir, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'domains' ORDER BY name"), [{ name: 'domains_hash' }],
    'one index, over the hash; no UNIQUE index over the text');
});

t.test('two names with the same hash are two names', async (t) => {
  const dir = stateDir(t);
  await attempts(dir, ['telegram.org']);
  // A name whose row carries web.whatsapp.com's hash, as a collision would leave it.
  const db = new Database(join(dir, DB_FILE));
  db.prepare('INSERT INTO domains (qname, hash) VALUES (?, ?)').run('decoy.example', qnameHash('web.whatsapp.com'));
  db.close();
  await attempts(dir, ['web.whatsapp.com', 'web.whatsapp.com'], T0 + 10_000);
  await attempts(dir, ['web.whatsapp.com'], T0 + 20_000);
  t.same(readRows(dir, 'SELECT qname FROM domains WHERE hash = ' + qnameHash('web.whatsapp.com') + ' ORDER BY id'),
    [{ qname: 'decoy.example' }, { qname: 'web.whatsapp.com' }], 'its own row next to the other, once');
  t.same(byDomain(dir), { 'telegram.org': 1, 'web.whatsapp.com': 3 }, 'the attempts go to the name asked, none to the other');
});

t.test('a schema 3 database is read as it is, then migrated by the writer with its ids unchanged', async (t) => {
  const dir = stateDir(t);
  await attempts(dir, ['web.whatsapp.com', 'telegram.org', 'www.icq.com']);
  // Make it as schema 3 left it: domains without hash, under a UNIQUE index over the text.
  const db = new Database(join(dir, DB_FILE));
  db.exec('DROP VIEW attempts; DROP INDEX domains_hash; CREATE TABLE d3 (id INTEGER PRIMARY KEY, qname TEXT NOT NULL UNIQUE);' +
    'INSERT INTO d3 SELECT id, qname FROM domains; DROP TABLE domains; ALTER TABLE d3 RENAME TO domains;' +
    "UPDATE meta SET value = '3' WHERE key = 'schema'");
  db.close();
  const before = readRows<{ id: number; qname: string }>(dir, 'SELECT id, qname FROM domains ORDER BY id');
  t.same(byDomain(dir), { 'web.whatsapp.com': 1, 'telegram.org': 1, 'www.icq.com': 1 }, 'reported before the migration');
  const reader = openReader(join(dir, DB_FILE));
  t.same(searchAttempts(reader, { ...RANGE, limit: 50, name: 'icq' }).rows.map((r) => r.qname), ['www.icq.com'], 'searched before the migration');
  reader.close();

  await attempts(dir, ['telegram.org', 't.me', 'web.whatsapp.com'], T0 + 10_000);
  t.same(readRows(dir, "SELECT value FROM meta WHERE key = 'schema'"), [{ value: String(SCHEMA_VERSION) }]);
  const after = readRows<{ id: number; qname: string; hash: number }>(dir, 'SELECT id, qname, hash FROM domains ORDER BY id');
  t.same(after.slice(0, 3).map(({ id, qname }) => ({ id, qname })), before, 'the old names keep their ids');
  t.same(after.map((r) => r.qname), ['web.whatsapp.com', 'telegram.org', 'www.icq.com', 't.me'], 'old names found again, one new row');
  for (const r of after) t.equal(r.hash, qnameHash(r.qname), `${r.qname}: its hash`);
  t.same(byDomain(dir), { 'web.whatsapp.com': 2, 'telegram.org': 2, 'www.icq.com': 1, 't.me': 1 }, 'old and new attempts on the same names');
  t.equal(readRows<{ n: number }>(dir, 'SELECT count(*) AS n FROM attempts')[0]!.n, 6, 'the view is back');
});
