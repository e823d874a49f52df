// list-url lines changed in the config file take effect at a reload (POST /reload here,
// SIGHUP on a real process), with no restart: a line added is fetched and in force, a URL
// changed fetches the new list, an interval changed reschedules, a line removed takes its
// bundle out; a bad line keeps everything running as it was, with one line saying why.
// The lists come from an HTTP server this test starts on 127.0.0.1.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { freePort, startSinkhole, type TestServer } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', '..', 'dist', 'main', 'cli.js');
const GUEST = '127.0.2.9';
const OTHER = '127.0.0.1';

const root = mkdtempSync(join(tmpdir(), 'sinkhole-list-reload-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

// The list site: one list per path, and how often each was asked for.
const lists: Record<string, string> = {
  '/alpha.txt': '# alpha\nalpha.example\n',
  '/beta.txt': '# beta\nbeta.example\n',
  '/gamma.txt': '# gamma\ngamma.example\n',
};
const asked: Record<string, number> = {};
const site = createServer((req, res) => {
  asked[req.url!] = (asked[req.url!] ?? 0) + 1;
  const body = lists[req.url!];
  if (body === undefined) res.writeHead(404).end();
  else res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
});
await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
t.teardown(() => new Promise<void>((r) => {
  site.closeAllConnections();
  site.close(() => r());
}));
const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
t.teardown(() => upstream.close());

function folder(): string {
  const dir = mkdtempSync(join(root, 'blocklists-'));
  mkdirSync(join(dir, 'available'));
  writeFileSync(join(dir, 'whatsapp.txt'), '# WhatsApp\nwhatsapp.example\n');
  return dir;
}

const verdict = async (port: number, name: string, from: string) => {
  const r = await ask(port, name, T.A, { from });
  return r.answers[0]?.text === '127.0.0.1' ? 'blocked' : r.answers[0]?.text === '192.0.2.7' ? 'allowed' : `odd ${JSON.stringify(r.answers)}`;
};

/** Polls until `name` gets `want` (bounded): a fetch comes within 2 s of a reload, plus the rule reload. */
async function becomes(port: number, name: string, from: string, want: string, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await verdict(port, name, from) === want) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return (await verdict(port, name, from)) === want;
}

t.test('POST /reload: list-url lines added, changed and removed take effect without a restart', async (t) => {
  const conf = join(root, 'admin.conf');
  const lines = (...more: string[]) => writeFileSync(conf, [`state-dir ${join(root, 'state-admin')}`, ...more, ''].join('\n'));
  lines(`list-url alpha ${base}/alpha.txt every 1h`);
  const adminPort = await freePort();
  const s: TestServer = await startSinkhole({ upstream: upstream.address, dir: folder(), args: ['--config', conf, '--admin', `127.0.0.1:${adminPort}`] });
  t.teardown(() => s.close());
  const reload = async () => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const status = async () => ((await (await fetch(`http://127.0.0.1:${adminPort}/api/pause`)).json()) as { lists: { bundle: string; url: string }[] }).lists;
  t.ok(await becomes(s.port, 'alpha.example', OTHER, 'blocked'), 'the list of the startup config is fetched and in force');
  t.equal(asked['/alpha.txt'], 1);

  // Added, with a group and a block line naming the new bundle in the same reload: accepted
  // before its first download.
  lines(`list-url alpha ${base}/alpha.txt every 1h`, `list-url beta ${base}/beta.txt`, 'group guests 127.0.2.0/24', 'block guests beta');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true } } });
  t.ok(await becomes(s.port, 'beta.example', GUEST, 'blocked'), 'the added list is fetched and blocks for the group naming it');
  t.equal(await verdict(s.port, 'alpha.example', GUEST), 'allowed', 'guests are blocked by beta only');
  t.equal(await verdict(s.port, 'alpha.example', OTHER), 'blocked', 'default: every enabled bundle, the first list too');
  t.equal(asked['/alpha.txt'], 1, 'an unchanged line is not fetched again');
  t.ok(s.logs.some((l) => l.msg === `list-url beta added (${conf}:3)`), 'the change is logged');
  t.same((await status()).map((l) => l.bundle), ['alpha', 'beta']);

  // The URL changed: the new list replaces the old one's rules.
  lines(`list-url alpha ${base}/gamma.txt every 1h`, `list-url beta ${base}/beta.txt`, 'group guests 127.0.2.0/24', 'block guests beta');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true } } });
  t.ok(await becomes(s.port, 'gamma.example', OTHER, 'blocked'), 'the new URL is fetched');
  t.ok(await becomes(s.port, 'alpha.example', OTHER, 'allowed'), 'the old URL\'s rules are gone');
  t.ok(s.logs.some((l) => l.msg === `list-url alpha: URL changed (${conf}:2)`));

  // The interval changed: rescheduled from the stored copy's age, not fetched again now.
  const before = asked['/beta.txt'];
  lines(`list-url alpha ${base}/gamma.txt every 1h`, `list-url beta ${base}/beta.txt every 12h`, 'group guests 127.0.2.0/24', 'block guests beta');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true } } });
  t.ok(s.logs.some((l) => l.msg === `list-url beta: interval changed (${conf}:3)`));
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(asked['/beta.txt'], before, 'a fresh stored copy is not fetched again for a new interval');
  t.equal(await verdict(s.port, 'beta.example', GUEST), 'blocked', 'and stays in force');

  // A bad line: the running lists and policy stay, one line says why.
  lines(`list-url alpha ${base}/gamma.txt every 1h`, `list-url beta ${base}/beta.txt every 12h`, `list-url beta ${base}/alpha.txt`, 'group guests 127.0.2.0/24', 'block guests beta');
  const dup = await reload();
  t.equal(dup.status, 400);
  t.same(dup.body.config, { reloaded: false, error: `${conf}:4: bundle beta already has a list-url (${conf}:3); give each bundle one URL` });
  lines(`list-url alpha ${base}/gamma.txt every 1h`, `list-url delta ftp://127.0.0.1/delta.txt`);
  t.match(await reload(), { status: 400, body: { config: { reloaded: false, error: `${conf}:3: ftp: URLs cannot be fetched; use https:// (or http://)` } } });
  t.ok(s.logs.some((l) => l.msg === `config reload failed: ${conf}:3: ftp: URLs cannot be fetched; use https:// (or http://); keeping the running policy`));
  t.equal(await verdict(s.port, 'beta.example', GUEST), 'blocked', 'the running policy and lists stay');
  t.same((await status()).map((l) => l.bundle), ['alpha', 'beta']);

  // Removed: the bundle leaves the rules at the reload; its group line goes with it.
  lines(`list-url alpha ${base}/gamma.txt every 1h`);
  t.match(await reload(), { status: 200, body: { config: { reloaded: true } } });
  t.equal(await verdict(s.port, 'beta.example', OTHER), 'allowed', 'in force when the reload returns');
  t.equal(await verdict(s.port, 'gamma.example', OTHER), 'blocked', 'the other list stays');
  t.ok(s.logs.some((l) => l.msg === 'list-url beta removed'));
  t.same((await status()).map((l) => l.bundle), ['alpha']);

  // Every line removed, then one back: the state directory was there all along.
  lines();
  t.match(await reload(), { status: 200, body: { config: { reloaded: true } } });
  t.equal(await verdict(s.port, 'gamma.example', OTHER), 'allowed');
  t.same(await status(), []);
  lines(`list-url beta ${base}/beta.txt`);
  t.match(await reload(), { status: 200, body: { config: { reloaded: true } } });
  t.ok(await becomes(s.port, 'beta.example', OTHER, 'blocked'), 'a list-url added to a config that had none');
});

t.test('SIGHUP on a real server process: a list-url added is fetched and in force', async (t) => {
  const conf = join(root, 'sighup.conf');
  const stateDir = join(root, 'state-sighup');
  writeFileSync(conf, `state-dir ${stateDir}\n`);
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--config', conf, '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address,
    '--blocklists', folder(), '--history', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const until = async (what: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return what();
  };
  t.ok(await until(() => out.includes('"msg":"ready"'), 15_000), 'the server is ready');
  t.equal(await verdict(port, 'gamma.example', OTHER), 'allowed');
  writeFileSync(conf, `state-dir ${stateDir}\nlist-url gamma ${base}/gamma.txt\n`);
  child.kill('SIGHUP');
  t.ok(await becomes(port, 'gamma.example', OTHER, 'blocked'), 'fetched and blocked after SIGHUP, no restart');
  t.match(out, /list-url gamma added/);
  writeFileSync(conf, `state-dir ${stateDir}\nlist-url gamma ${base}/gamma.txt every 10s\n`);
  child.kill('SIGHUP');
  t.ok(await until(() => out.includes('config reload failed'), 3000), 'a bad line is refused');
  t.match(out, /config reload failed: [^"]*sighup\.conf:2: \\"every 10s\\" is too often for a list site; give at least 1m \(24h is usual\); keeping the running policy/);
  t.equal(await verdict(port, 'gamma.example', OTHER), 'blocked', 'the running list stays');
});
