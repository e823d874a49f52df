// Reports over history.sqlite: the JSON and CSV shapes of `sinkhole report` and GET
// /api/report, every grouping, the filters, local-time days and hours, and reading while the
// writer has the database open and after it stopped.
process.env.TZ = 'Europe/Berlin';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../../src/config/config.js';
import { historyHandlers } from '../../src/observe/history/api.js';
import { History } from '../../src/observe/history/history.js';
import { parseTime } from '../../src/observe/history/report-args.js';
import { report, reportCsv, type Report } from '../../src/observe/history/report.js';
import { DB_FILE, openReader } from '../../src/observe/history/schema.js';
import { runReport } from '../../src/main/commands/report.js';
import { eventSource } from '../helpers/history.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// 2026-11-03 14:20 UTC = 15:20 in Berlin (CET, +01:00).
const T0 = Date.UTC(2026, 10, 3, 14, 20);
const NOW = T0 + 2 * DAY;
const iso = (ms: number) => new Date(ms).toISOString();

const dir = mkdtempSync(join(tmpdir(), 'sinkhole-report-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const src = await eventSource();
const history = new History({ mode: 'blocked', days: 90, stateDir: dir, flushMs: 50, node: 'n1', log: { warn: () => undefined, info: () => undefined } });
history.describeClient = (a) => (a === '192.168.1.23' ? { name: 'laptop-7', group: 'kids' } : { name: '', group: 'default' });
for (let i = 0; i < 3; i++) history.answered(src.event('192.168.1.23', 'web.whatsapp.com', 1, T0 + i * 1000));
history.answered(src.event('192.168.1.23', 'telegram.org', 28, T0 + 5000));
for (let i = 0; i < 4; i++) history.answered(src.event('192.168.1.23', `www${i}.example.org`, 1, T0 + 6000 + i, 'forwarded'));
history.answered(src.event('192.168.1.40', 'www.icq.com', 1, T0 + HOUR));
history.answered(src.event('192.168.1.40', 'mmg.whatsapp.net', 1, T0 + DAY));
history.flush();
for (let i = 0; history.figures().written < 6; i++) {
  if (i > 250) throw new Error('history not written');
  await new Promise((r) => setTimeout(r, 20));
}

const run = (args: string[]): string => {
  let out = '';
  runReport([...args, '--state-dir', dir], NOW, (text) => (out += text));
  return out;
};
const json = (args: string[]): Report => JSON.parse(run([...args, '--format', 'json'])) as Report;
const week = ['--since', '7d'];

t.test('JSON by client: key, name, count, first, last; the writer still has the database open', async (t) => {
  t.same(json([...week, '--by', 'client']), {
    since: iso(NOW - 7 * DAY), until: iso(NOW), by: 'client',
    rows: [
      { key: '192.168.1.23', name: 'laptop-7', count: 4, first: iso(T0), last: iso(T0 + 5000) },
      { key: '192.168.1.40', name: null, count: 2, first: iso(T0 + HOUR), last: iso(T0 + DAY) },
    ],
  });
});

t.test('every grouping', async (t) => {
  const rows = (by: string, more: string[] = []) => json([...week, '--by', by, ...more]).rows.map((r) => [r.key, r.name, r.count]);
  t.same(rows('bundle'), [['whatsapp', null, 4], ['icq', null, 1], ['telegram', null, 1]]);
  t.same(rows('domain'), [['web.whatsapp.com', null, 3], ['mmg.whatsapp.net', null, 1], ['telegram.org', null, 1], ['www.icq.com', null, 1]]);
  t.same(rows('group'), [['kids', null, 4], ['default', null, 2]]);
  t.same(rows('day'), [['2026-11-03', null, 5], ['2026-11-04', null, 1]], 'days in local time, in order');
  t.same(rows('hour'), [['2026-11-03T15:00:00+01:00', null, 4], ['2026-11-03T16:00:00+01:00', null, 1], ['2026-11-04T15:00:00+01:00', null, 1]]);
  t.same(rows('bundle', ['--client', 'LAPTOP-7']), [['whatsapp', null, 3], ['telegram', null, 1]], 'a client by name');
  t.same(rows('domain', ['--client', '192.168.1.40', '--bundle', 'whatsapp']), [['mmg.whatsapp.net', null, 1]], 'a client by address, one bundle');
  t.same(rows('client', ['--bundle', 'yahoo']), [], 'a bundle never seen: no rows');
  t.same(rows('client', ['--client', '10.9.9.9']), [], 'a client never seen: no rows');
  t.same(json(['--since', '2026-11-03', '--until', '2026-11-03', '--by', 'client']).rows.map((r) => r.count), [4, 1], 'a local day: --until DATE is the end of that day');
});

t.test('CSV: header key,name,count,first,last; a row per key; fields with commas or quotes quoted', async (t) => {
  t.equal(run([...week, '--by', 'client', '--format', 'csv']),
    'key,name,count,first,last\n' +
    `192.168.1.23,laptop-7,4,${iso(T0)},${iso(T0 + 5000)}\n` +
    `192.168.1.40,,2,${iso(T0 + HOUR)},${iso(T0 + DAY)}\n`);
  t.equal(reportCsv({ since: iso(0), until: iso(1), by: 'client', rows: [{ key: '10.0.0.1', name: 'Anna\'s "tablet", 2nd', count: 1, first: iso(0), last: iso(0) }] }),
    `key,name,count,first,last\n10.0.0.1,"Anna's ""tablet"", 2nd",1,${iso(0)},${iso(0)}\n`);
});

t.test('table: local times with date', async (t) => {
  t.equal(run([...week, '--by', 'client']), [
    'blocked attempts by client, 2026-10-29 15:20:00 to 2026-11-05 15:20:00 (local time)',
    'CLIENT        NAME      COUNT  FIRST                LAST',
    '192.168.1.23  laptop-7      4  2026-11-03 15:20:00  2026-11-03 15:20:05',
    '192.168.1.40  -             2  2026-11-03 16:20:00  2026-11-04 15:20:00',
    '',
  ].join('\n'));
});

t.test('GET /api/report: the same JSON, 400 for a bad parameter, 503 without a database', async (t) => {
  const handler = historyHandlers(dir, () => NOW).report;
  const ok = await handler(new URLSearchParams({ since: '7d', by: 'bundle' }));
  t.equal(ok.status, 200);
  t.same(ok.body, json([...week, '--by', 'bundle']));
  t.same(await handler(new URLSearchParams({ by: 'messenger' })), { status: 400, body: { error: 'by: "messenger" is not one of client, bundle, domain, group, day, hour' } });
  t.same((await handler(new URLSearchParams({ since: 'last tuesday' }))).status, 400);
  // Several at once, answered by the report thread, each with its own result.
  const [a, b] = await Promise.all([handler(new URLSearchParams({ by: 'client' })), handler(new URLSearchParams({ by: 'domain', client: 'laptop-7' }))]);
  t.same(a.body, json([...week, '--by', 'client']));
  t.same((b.body as Report).rows.map((r) => r.key), ['web.whatsapp.com', 'telegram.org']);
  const empty = mkdtempSync(join(tmpdir(), 'sinkhole-report-empty-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  t.match(await historyHandlers(empty).report(new URLSearchParams()), { status: 503, body: { error: /^no history yet at .*history\.sqlite/ } });
});

t.test('errors are one line naming the flag', async (t) => {
  t.throws(() => run(['--by', 'messenger']), new ConfigError('report: --by: "messenger" is not one of client, bundle, domain, group, day, hour'));
  t.throws(() => run(['--since', '2026-11-05', '--until', '2026-11-01']), { message: /^report: --until \(2026-11-01T23:00:00.000Z\) must be after --since/ });
  t.throws(() => run(['--format', 'xml']), { message: 'report: --format "xml" is not one of table, csv, json' });
  t.throws(() => run(['--verbose']), { message: 'report: unknown argument "--verbose" (see "sinkhole report --help")' });
  const file = join(dir, 'not-a-folder');
  writeFileSync(file, '');
  t.throws(() => runReport(['--state-dir', file], NOW, () => undefined), { message: `report: no history database at ${file}/history.sqlite (${file} is not a folder); pass the server's --state-dir, and run it with --history blocked or all` });
  let help = '';
  t.equal(runReport(['--help'], NOW, (s) => (help += s)), 0);
  t.match(help, /^Usage: sinkhole report \[options\]/);
});

t.test('times: 7d, 12h, dates at local midnight, ISO', async (t) => {
  t.equal(parseTime('12h', NOW, false), NOW - 12 * HOUR);
  t.equal(parseTime('2w', NOW, false), NOW - 14 * DAY);
  t.equal(parseTime('2026-11-01', NOW, false), Date.UTC(2026, 9, 31, 23), 'local midnight (Berlin, +01:00)');
  t.equal(parseTime('2026-11-01', NOW, true), Date.UTC(2026, 10, 1, 23), 'as --until: the end of the day');
  t.equal(parseTime('2026-11-01T08:00:00Z', NOW, false), Date.UTC(2026, 10, 1, 8));
  t.equal(parseTime('2026-13-01', NOW, false), null);
  t.equal(parseTime('yesterday', NOW, false), null);
});

t.test('after the writer stopped: the same report, read-only', async (t) => {
  const before = json([...week, '--by', 'domain']);
  await history.close();
  t.same(json([...week, '--by', 'domain']), before);
  const db = openReader(join(dir, DB_FILE));
  t.teardown(() => db.close());
  t.throws(() => db.exec('DELETE FROM queries'), { code: 'SQLITE_READONLY' }, 'reports cannot change the database');
  t.equal(report(db, { since: 0, until: NOW, by: 'client' }).rows.length, 2);
});
