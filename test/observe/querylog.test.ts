// The query log and the statistics behind /api/stats and `sinkhole stats`: one JSON line
// per query with the fields admins grep for; blocked-only and sampled modes; reopened for
// logrotate; statistics bounded however many clients and names there are.
import { PipelineEvent } from '../../src/pipeline/query-event.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { QueryStats } from '../../src/observe/stats.js';
import { parseQuery, Query } from '../../src/wire/query.js';
import { ask } from '../helpers/client.js';
import { buildQuery, T } from '../helpers/dns.js';
import { freePort, serverWithUpstream } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const answer = (q: { rawName: string }) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] });

async function lines(path: string, count: number): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 60; i++) {
    const found = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
    if (found.length >= count) return found;
    await sleep(50);
  }
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
}

t.test('query log: a JSON line per query with client, name, type, verdict, rule, rcode, upstream, latency', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-qlog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'queries.log');
  const { s, upstream } = await serverWithUpstream(t, { handler: answer, lists: { 'yahoo-messenger.txt': 'msg.yahoo.com\n' }, args: ['--query-log', file] });
  await ask(s.port, 'scs.msg.yahoo.com', T.A);
  await ask(s.port, 'www.example.org', T.A);
  await ask(s.port, 'www.example.org', T.A);
  const logged = await lines(file, 3);
  t.match(logged[0], { client: '127.0.0.1', name: 'scs.msg.yahoo.com', type: 'A', verdict: 'blocked', rule: `${s.dir}/yahoo-messenger.txt:1`, bundle: 'yahoo-messenger', rcode: 'NOERROR', ms: Number, time: String });
  t.match(logged[1], { name: 'www.example.org', verdict: 'forwarded', upstream: upstream.address, rcode: 'NOERROR' });
  t.match(logged[2], { verdict: 'cached' });

  // logrotate: move the file away, SIGHUP (reopenLogs), and the next lines go to a new file.
  renameSync(file, `${file}.1`);
  s.server.reopenLogs();
  await ask(s.port, 'after-rotate.example.org', T.A);
  t.match(await lines(file, 1), [{ name: 'after-rotate.example.org' }], 'reopened after rotation');
});

t.test('query log modes: blocked only; one in N of the others', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-qlog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const blockedFile = join(dir, 'blocked.log');
  const a = await serverWithUpstream(t, { handler: answer, lists: { 'm.txt': 'meebo.com\n' }, args: ['--query-log', blockedFile, '--query-log-mode', 'blocked'] });
  for (const name of ['a.example.org', 'meebo.com', 'b.example.org']) await ask(a.s.port, name, T.A);
  await sleep(300);
  t.same((await lines(blockedFile, 1)).map((l) => l.name), ['meebo.com'], 'blocked only');
  const sampleFile = join(dir, 'sample.log');
  const b = await serverWithUpstream(t, { handler: answer, lists: { 'm.txt': 'meebo.com\n' }, args: ['--query-log', sampleFile, '--query-log-mode', 'sample:5'] });
  for (let i = 0; i < 10; i++) await ask(b.s.port, `n${i}.example.org`, T.A);
  await ask(b.s.port, 'meebo.com', T.A);
  await sleep(300);
  t.same((await lines(sampleFile, 3)).map((l) => l.name), ['n4.example.org', 'n9.example.org', 'meebo.com'], 'one in five, and every blocked query');
});

t.test('statistics stay bounded under many distinct clients and names', async (t) => {
  const stats = new QueryStats();
  const event = new PipelineEvent();
  const explainer = { explain: () => ({ file: 'f.txt', bundle: 'b', line: 1, allow: false, rule: 'x.example' }) };
  for (let i = 0; i < 50_000; i++) {
    const q = parseQuery(buildQuery(`n${i}.x${i % 977}.example`, T.A)) as Query;
    q.clientAddress = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    event.set(q, 'blocked', 0, '', 0, explainer);
    stats.answered(event);
  }
  t.ok(stats.topClients.entries().length <= 200, `50,000 clients, ${stats.topClients.entries().length} kept`);
  t.ok(stats.topDomains.entries().length <= 200);
  t.equal(stats.recent.length, 50, 'the latest 50 attempts');
  t.equal(stats.timeline().reduce((n, h) => n + h.blocked, 0), 50_000, 'every blocked query counted in the last 24 h');
  t.equal(stats.byOutcome[0], 50_000);
});

t.test('statistics: the ring of recent attempts keeps the latest 50 in order; top names are text; the canary apart', async (t) => {
  const stats = new QueryStats();
  const event = new PipelineEvent();
  let sources = 0;
  const explainer = {
    explain: () => ({ file: 'f.txt', bundle: 'b', line: 1, allow: false, rule: 'x.example' }),
    source: (d: number) => (sources++, { file: 'f.txt', bundle: 'b', line: d }),
  };
  for (let i = 0; i < 120; i++) {
    const q = parseQuery(buildQuery(`n${i}.Example.ORG`, T.A)) as Query;
    q.clientAddress = '10.0.0.1';
    event.set(q, 'blocked', 0, '', i + 1, explainer, Date.UTC(2026, 11, 3, 8, 0, i));
    stats.answered(event);
    t.equal(event.ruleSource(), event.ruleSource(), 'one source per event, made once');
  }
  t.equal(sources, 120, 'the explainer asked once per blocked query');
  const recent = stats.recent;
  t.equal(recent.length, 50);
  t.same(recent.map((r) => r.qname), Array.from({ length: 50 }, (_, k) => `n${70 + k}.example.org`), 'oldest first, the last 50');
  t.same(recent.map((r) => r.rule), Array.from({ length: 50 }, (_, k) => `f.txt:${71 + k}`));
  t.equal(recent[0]!.time, '2026-12-03T08:01:10.000Z', "the event's time");
  // The canary: blocked without a rule, counted apart.
  const canary = parseQuery(buildQuery('use-application-dns.net', T.A)) as Query;
  canary.clientAddress = '10.0.0.2';
  event.set(canary, 'blocked', 0, '', -1, null);
  stats.answered(event);
  t.equal(stats.canary, 1);
  t.equal(stats.recent.at(-1)!.qname, 'n119.example.org', 'the canary is not an attempt');
  const snapshot = stats.snapshot();
  t.ok(snapshot.topDomains.every(([name]) => /^n\d+\.example\.org$/.test(name)), 'top names as text, not keys');
  t.same(snapshot.topClients, [['10.0.0.1', 120]]);
});

t.test('/api/stats and sinkhole stats show who tried which bundle', async (t) => {
  const adminPort = await freePort();
  const { s } = await serverWithUpstream(t, { handler: answer, lists: { 'aim-icq.txt': 'oscar.aol.com\n', 'yahoo-messenger.txt': 'msg.yahoo.com\n' },
    args: ['--admin', `127.0.0.1:${adminPort}`] });
  for (let i = 0; i < 3; i++) await ask(s.port, 'login.oscar.aol.com', T.A, { from: '127.0.0.2' });
  await ask(s.port, 'scs.msg.yahoo.com', T.A);
  await ask(s.port, 'www.example.org', T.A);
  const stats = await (await fetch(`http://127.0.0.1:${adminPort}/api/stats`)).json() as Record<string, unknown>;
  t.match(stats, {
    queries: 5, blocked: 4, topBlockedClients: [{ key: '127.0.0.2', count: 3 }, { key: '127.0.0.1', count: 1 }],
    topBlockedBundles: [{ key: 'aim-icq', count: 3 }, { key: 'yahoo-messenger', count: 1 }],
    recentBlocked: [{ qname: 'scs.msg.yahoo.com', bundle: 'yahoo-messenger' }],
  });
  t.equal((stats.last24h as unknown[]).length, 24);
  const out = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js'), 'stats', '--admin', `127.0.0.1:${adminPort}`]);
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('close', () => resolve(text));
  });
  t.match(out, /5 queries: 4 blocked \(80\.0%\)/);
  t.match(out, /top blocked bundles:\n\s+3  aim-icq\n\s+1  yahoo-messenger/);
  t.match(out, /127\.0\.0\.2/);
});
