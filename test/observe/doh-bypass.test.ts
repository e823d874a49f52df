// The shipped doh-bypass bundle (public DoH/DoT resolvers' names) and the count of clients
// that looked one up: over real sockets, in /api/stats (dohBypassClients) and in
// `sinkhole stats` ("DoH bypass attempts").
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { mergeSnapshots, type AdminSnapshot } from '../../src/admin/snapshot.js';
import { checkName } from '../../src/stages/policy/check.js';
import { loadBlocklists } from '../../src/stages/policy/load.js';
import { Policy } from '../../src/stages/policy/policy.js';
import { QTYPE } from '../../src/wire/constants.js';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole, writeLists } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHIPPED = join(ROOT, 'blocklists', 'available', 'doh-bypass.txt');
const CLI = join(ROOT, 'dist', 'main', 'cli.js');

t.test('doh-bypass is shipped available, not enabled, and blocks the resolvers but not their companies', async (t) => {
  t.ok(existsSync(SHIPPED), 'blocklists/available/doh-bypass.txt');
  t.notOk(existsSync(join(ROOT, 'blocklists', 'doh-bypass.txt')), 'not enabled by default');
  const report = await loadBlocklists(writeLists({ 'doh-bypass.txt': readFileSync(SHIPPED, 'utf8') }));
  t.same(report.failed, []);
  t.equal(report.ruleSet.files[0]!.invalidCount, 0, 'no invalid line');
  const ctx = { policy: new Policy(report.ruleSet, null), allowNets: null, sinkholeIpv4: '127.0.0.1', sinkholeIpv6: '::1' };
  const verdict = (name: string) => {
    const r = checkName(ctx, name, QTYPE.A, null);
    if ('error' in r) throw new Error(r.error);
    return r.verdict;
  };
  for (const name of ['dns.google', 'dns.google.com', 'mozilla.cloudflare-dns.com', 'chrome.cloudflare-dns.com', 'one.one.one.one', 'dns.quad9.net',
    'doh.opendns.com', 'abc123.dns.nextdns.io', 'dns.adguard-dns.com', 'x1.d.adguard-dns.com', 'doh.cleanbrowsing.org', 'adblock.dns.mullvad.net',
    'freedns.controld.com', 'doh.dns.sb']) {
    t.equal(verdict(name), 'blocked', `${name} is blocked`);
  }
  for (const name of ['google.com', 'www.google.com', 'cloudflare.com', 'www.cloudflare.com', 'quad9.net', 'www.quad9.net', 'opendns.com',
    'nextdns.io', 'adguard.com', 'adguard-dns.io', 'mullvad.net', 'controld.com', 'cleanbrowsing.org']) {
    t.equal(verdict(name), 'allowed', `${name} is left alone`);
  }
});

t.test('clients that looked up a DoH resolver: /api/stats dohBypassClients and `sinkhole stats`, over real sockets', async (t) => {
  t.ok(existsSync(CLI), 'dist/ is built (npm run build)');
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  const adminPort = await freePort();
  const s = await startSinkhole({
    upstream: upstream.address,
    lists: { 'doh-bypass.txt': readFileSync(SHIPPED, 'utf8'), 'msn-messenger.txt': 'messenger.hotmail.com\n' },
    args: ['--admin', `127.0.0.1:${adminPort}`],
  });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  for (let i = 0; i < 3; i++) {
    const r = await ask(s.port, i === 0 ? 'dns.google' : `x${i}.cloudflare-dns.com`, T.A, { from: '127.0.0.2' });
    t.equal(r.answers[0]?.text, '127.0.0.1', 'a DoH resolver\'s name gets the blocked answer');
  }
  await ask(s.port, 'dns.quad9.net', T.AAAA, { from: '127.0.0.3' });
  await ask(s.port, 'messenger.hotmail.com', T.A, { from: '127.0.0.4' });
  t.equal((await ask(s.port, 'www.example.org', T.A, { from: '127.0.0.5' })).answers[0]?.text, '192.0.2.7');

  const stats = await (await fetch(`http://127.0.0.1:${adminPort}/api/stats`)).json() as Record<string, unknown>;
  t.same(stats.dohBypassClients, [{ key: '127.0.0.2', count: 3 }, { key: '127.0.0.3', count: 1 }],
    'the clients that looked up DoH/DoT resolvers, most first; not the one blocked for another bundle');
  t.match(stats, { blocked: 5, topBlockedBundles: [{ key: 'doh-bypass', count: 4 }, { key: 'msn-messenger', count: 1 }] });

  const out = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'stats', '--admin', `127.0.0.1:${adminPort}`]);
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('close', () => resolve(text));
  });
  t.match(out, /DoH bypass attempts[^\n]*:\n\s+3  127\.0\.0\.2\n\s+1  127\.0\.0\.3\n/, 'sinkhole stats lists them');
  const section = /DoH bypass attempts[^\n]*\n((?: {2}[^\n]*\n)*)/.exec(out)?.[1] ?? '';
  t.same(section.trim().split('\n').map((l) => l.trim().split(/\s+/)), [['3', '127.0.0.2'], ['1', '127.0.0.3']], 'and only them (not the msn client)');
});

t.test('with --workers, the workers\' doh-bypass counts are added up', async (t) => {
  const snap = (entries: [string, number][]): AdminSnapshot => ({
    startedAt: 0, families: [],
    stats: { topClients: [], topBundles: [], topDomains: [], dohBypassClients: entries, recent: [], timeline: [] },
  });
  t.same(mergeSnapshots([snap([['127.0.0.2', 2]]), snap([['127.0.0.2', 1], ['127.0.0.3', 4]])]).stats.dohBypassClients,
    [['127.0.0.2', 3], ['127.0.0.3', 4]]);
});
