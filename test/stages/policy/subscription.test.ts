// List subscriptions against a real HTTP server on 127.0.0.1: first fetch, conditional
// requests, a stored copy that survives failures, garbage, shrinking, size caps, timeouts
// and a start with the list site down; AdGuard's service catalogue as one bundle per service.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/config/config.js';
import { loadBlocklists } from '../../../src/stages/policy/load.js';
import { ruleOf } from '../../../src/stages/policy/ruleset.js';
import { parseListUrlLine, Subscriptions } from '../../../src/stages/policy/sources/subscription.js';
import { textToKey } from '../../../src/wire/names.js';
import { captureLogs } from '../../helpers/server.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

async function listSite(t: Test, routes: Record<string, Route>) {
  const requests: { path: string; headers: IncomingMessage['headers'] }[] = [];
  const server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', headers: req.headers });
    const route = routes[req.url ?? ''];
    if (route === undefined) {
      res.writeHead(404).end('not here');
      return;
    }
    route(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { base: `http://127.0.0.1:${port}`, requests, server };
}

const domains = (n: number, prefix = 'chat') => Array.from({ length: n }, (_, i) => `${prefix}${i}.example`).join('\n') + '\n';

function setup(t: Test, lines: string[], options: { timeoutMs?: number; maxBytes?: number } = {}, stateDir = mkdtempSync(join(tmpdir(), 'sinkhole-state-'))) {
  const { output, logs } = captureLogs();
  const subs = new Subscriptions(lines.map((l, i) => parseListUrlLine(l, `s.conf:${i + 1}`)), { stateDir, ...options }, output.log);
  t.teardown(() => subs.stop());
  return { subs, logs, stateDir };
}

const messages = (logs: Record<string, unknown>[]) => logs.map((l) => String(l.msg));

t.test('list-url lines', async (t) => {
  t.same(parseListUrlLine('WhatsApp https://lists.example/w.txt every 12h', 'f:1'), { bundle: 'whatsapp', url: 'https://lists.example/w.txt', everyMs: 43_200_000, where: 'f:1' });
  t.equal(parseListUrlLine('x http://l.example/x', 'f:2').everyMs, 86_400_000, '24h by default');
  for (const [bad, what] of [['x ftp://l.example/x', /ftp: URLs cannot be fetched/], ['x notaurl', /not a URL/], ['x', /expected "list-url BUNDLE URL/],
    ['x https://l.example/x every 10s', /too often/], ['x https://l.example/x every soon', /not a duration/], ['x https://l.example/x each 1h', /expected/]] as const) {
    let error: unknown = null;
    try {
      parseListUrlLine(bad, 'f:3');
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof ConfigError && error.message.startsWith('f:3: ') && what.test(error.message), `${bad}: ${String(error)}`);
  }
});

t.test('first fetch, stored copy, conditional requests, loaded as an enabled bundle', async (t) => {
  const site = await listSite(t, {
    '/w.txt': (req, res) => {
      if (req.headers['if-none-match'] === '"v1"') return void res.writeHead(304).end();
      res.writeHead(200, { etag: '"v1"', 'last-modified': 'Mon, 30 Nov 2026 10:00:00 GMT' }).end('# whatsapp\nwhatsapp.example\n||web.whatsapp.example^\nip:157.240.0.0/16\n');
    },
  });
  const { subs, stateDir, logs } = setup(t, [`whatsapp ${site.base}/w.txt every 1h`]);
  t.equal(subs.bundleStatus('whatsapp'), 'pending', 'named by a list-url, not fetched yet');
  t.equal(subs.bundleStatus('viber'), 'unknown');
  const updated = new Promise((r) => (subs.onUpdated = r));
  subs.start();
  await updated;
  t.equal(subs.bundleStatus('whatsapp'), 'known');
  const stored = join(stateDir, 'lists', 'whatsapp.txt');
  t.same(subs.lists(), [{ path: stored, standby: false }]);
  t.match(readFileSync(stored, 'utf8'), /whatsapp\.example/);
  t.match(messages(logs), [/list-url whatsapp: 3 rules fetched/]);
  const [again] = await subs.updateNow();
  t.equal(again!.outcome, 'unchanged', '304 with the stored ETag');
  t.equal(site.requests[1]!.headers['if-none-match'], '"v1"');
  t.equal(site.requests[1]!.headers['if-modified-since'], 'Mon, 30 Nov 2026 10:00:00 GMT');
  const report = await loadBlocklists(mkdtempSync(join(tmpdir(), 'sinkhole-lists-')), new Map(), { extra: subs.lists() });
  t.ok(report.ruleSet.match(textToKey('a.web.whatsapp.example') as string) >= 0, 'the stored list is in the rule set');
  t.equal(report.ruleSet.files[0]!.bundle, 'whatsapp');
  t.equal(report.ruleSet.files[0]!.standby, false);
});

t.test('the stored copy stays: HTTP errors, garbage, shrinking, size cap, timeout, the site down at start', async (t) => {
  let mode = 'good';
  const site = await listSite(t, {
    '/l.txt': (_req, res) => {
      if (mode === 'good') return void res.writeHead(200).end(domains(100));
      if (mode === '500') return void res.writeHead(500).end('oops');
      if (mode === 'html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>\n<head><title>Login</title></head>\n<body>\nplease log in\n</body>\n</html>\n');
      if (mode === 'shrunk') return void res.writeHead(200).end(domains(5));
      if (mode === 'big') return void res.writeHead(200).end(domains(5000));
      if (mode === 'chunked-big') {
        res.writeHead(200);
        res.write(domains(3000));
        return void res.end(domains(3000, 'more'));
      }
      if (mode === 'slow') return void setTimeout(() => res.writeHead(200).end(domains(100)), 1500);
    },
  });
  const { subs, logs, stateDir } = setup(t, [`office ${site.base}/l.txt`], { timeoutMs: 500, maxBytes: 60_000 });
  t.equal((await subs.updateNow())[0]!.rules, 100);
  const outcome = async (m: string) => {
    mode = m;
    logs.length = 0;
    const [r] = await subs.updateNow();
    return [r!.outcome, r!.rules, messages(logs).join(' | ')];
  };
  t.match(await outcome('500'), ['failed', 100, /^list-url office: HTTP 500 from 127\.0\.0\.1:\d+; keeping the stored copy \(100 rules\)$/]);
  t.match(await outcome('html'), ['garbage', 100, /not rules .*keeping the stored copy/]);
  t.match(await outcome('shrunk'), ['shrunk', 100, /shrank from 100 to 5 rules/]);
  t.match(await outcome('big'), ['failed', 100, /above the 60000-byte cap/]);
  t.match(await outcome('chunked-big'), ['failed', 100, /above the 60000-byte cap/]);
  t.match(await outcome('slow'), ['failed', 100, /no answer within 500ms/]);
  t.equal(readFileSync(join(stateDir, 'lists', 'office.txt'), 'utf8'), domains(100), 'the stored copy is untouched');
  t.match(await outcome('good'), ['updated', 100, /100 rules fetched/]);

  // A restart with the list site gone: the stored copy is loaded at once, the failed fetch only logged.
  const down = `http://127.0.0.1:${(site.server.address() as AddressInfo).port}/l.txt`;
  await new Promise<void>((r) => {
    site.server.closeAllConnections();
    site.server.close(() => r());
  });
  const restarted = setup(t, [`office ${down}`], { timeoutMs: 500 }, stateDir);
  t.same(restarted.subs.lists().map((l) => l.path), [join(stateDir, 'lists', 'office.txt')], 'in force before any fetch');
  const [r] = await restarted.subs.updateNow();
  t.equal(r!.outcome, 'failed');
  t.match(messages(restarted.logs), [/cannot fetch \(ECONNREFUSED\); keeping the stored copy/]);
});

t.test('a first fetch that fails leaves the bundle empty and is retried on schedule', async (t) => {
  const site = await listSite(t, {});
  const { subs, logs } = setup(t, [`x ${site.base}/missing.txt`]);
  const [r] = await subs.updateNow();
  t.equal(r!.outcome, 'failed');
  t.same(subs.lists(), []);
  t.match(messages(logs), [/HTTP 404 .*no stored copy yet, the bundle stays empty/]);
});

t.test('service catalogue: one standby bundle per service', async (t) => {
  const catalogue = {
    groups: [{ id: 'messenger' }],
    blocked_services: [
      { id: 'kakaotalk', name: 'KakaoTalk', rules: ['||kakao.com^', '||kgslb.com^'], group: 'messenger', icon_svg: '<svg/>' },
      { id: 'viber', name: 'Viber', rules: ['||viber.com^', '||viber.io^'], group: 'messenger' },
      { id: 'bad id!', name: 'x', rules: ['||x.example^'] },
    ],
  };
  const site = await listSite(t, { '/services.json': (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(catalogue)) });
  const { subs, stateDir } = setup(t, [`catalogue ${site.base}/services.json`]);
  t.equal(subs.bundleStatus('viber'), 'pending', 'any name may come from a catalogue not yet fetched');
  const [r] = await subs.updateNow();
  t.equal(r!.outcome, 'updated');
  t.equal(r!.rules, 4);
  t.equal(subs.bundleStatus('viber'), 'known');
  t.equal(subs.bundleStatus('kakaotalk'), 'known');
  t.equal(subs.bundleStatus('signal'), 'unknown', 'once fetched, only its services');
  const lists = subs.lists();
  t.same(lists.map((l) => [l.path.slice(stateDir.length), l.standby]), [['/lists/catalogue.catalogue/kakaotalk.txt', true], ['/lists/catalogue.catalogue/viber.txt', true]]);
  const report = await loadBlocklists(mkdtempSync(join(tmpdir(), 'sinkhole-lists-')), new Map(), { extra: lists });
  const m = report.ruleSet.match(textToKey('dl.viber.io') as string);
  t.equal(report.ruleSet.describe(ruleOf(m)).bundle, 'viber');
  t.ok(report.ruleSet.files.every((f) => f.standby === true));
  t.notOk(existsSync(join(stateDir, 'lists', 'catalogue.txt')));
});
