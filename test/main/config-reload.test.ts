// A config reload (POST /reload; SIGHUP runs the same code, see groups-e2e and
// list-url-reload) swaps allow-net and the upstreams in place (no query lost), and names
// the changed settings that only a restart applies. Clients at several 127.x source addresses over real sockets.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask, udpExchange } from '../helpers/client.js';
import { buildQuery, decode, T } from '../helpers/dns.js';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'sinkhole-config-reload-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('allow-net changes at a reload; restart-only settings are named, not applied', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const conf = join(root, 'sinkhole.conf');
  writeFileSync(conf, 'allow-net 127.0.1.0/24\ncache-size 1000\n');
  const adminPort = await freePort();
  const s = await startSinkhole({ upstream: upstream.address, args: ['--config', conf, '--admin', `127.0.0.1:${adminPort}`] });
  t.teardown(() => s.close());
  const rcode = async (from: string) => (await ask(s.port, 'www.example.org', T.A, { from })).rcode;
  const reload = async () => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  t.equal(await rcode('127.0.1.5'), 0, 'a client in allow-net is answered');
  t.equal(await rcode('127.0.2.9'), 5, 'one outside is refused');

  writeFileSync(conf, 'allow-net 127.0.1.0/24\nallow-net 127.0.2.0/24\ncache-size 2000\n');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true, restartNeeded: ['cache-size'] } } });
  t.equal(await rcode('127.0.2.9'), 0, 'the network added is answered, no restart');
  t.equal(await rcode('127.0.3.1'), 5, 'others still refused');
  t.ok(s.logs.some((l) => l.msg === 'allow-net now 127.0.1.0/24 127.0.2.0/24'), 'the change is logged');
  t.ok(s.logs.some((l) => l.msg === 'config file: cache-size changed; in force at the next restart (systemctl restart sinkhole)'), 'a restart-only setting is named');

  // A bad allow-net line: the running networks stay.
  writeFileSync(conf, 'allow-net 127.0.1.0/33\n');
  const bad = await reload();
  t.equal(bad.status, 400);
  t.match(bad.body.config, { reloaded: false, error: new RegExp(`^${conf.replace(/[.]/g, '\\.')}:1: `) });
  t.equal(await rcode('127.0.2.9'), 0, 'kept');
  t.equal(await rcode('127.0.3.1'), 5, 'kept');

  // Back to the first networks; nothing needs a restart any more.
  writeFileSync(conf, 'allow-net 127.0.1.0/24\ncache-size 1000\n');
  t.match(await reload(), { status: 200, body: { config: { reloaded: true, restartNeeded: [] } } });
  t.equal(await rcode('127.0.2.9'), 5, 'the network removed is refused again');
});

t.test('--workers 2: POST /reload through the primary re-reads the config in every worker', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const conf = join(root, 'workers.conf');
  const dir = join(root, 'workers-lists');
  mkdirSync(dir);
  writeFileSync(conf, 'allow-net 127.0.1.0/24\n');
  const [port, adminPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [CLI, 'serve', '--workers', '2', '--config', conf, '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address,
    '--blocklists', dir, '--admin', `127.0.0.1:${adminPort}`, '--state-dir', join(root, 'workers-state'), '--history', 'off', '--rate-limit', '0'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  for (let waited = 0; !(out.includes('all workers ready') && out.includes('admin API listening')) && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /all workers ready/);
  // Many source ports at once: both workers get some.
  const rcodes = async () => (await Promise.all(Array.from({ length: 30 }, (_, i) => ask(port, `n${i}.example.org`, T.A, { from: '127.0.2.9' })))).map((r) => r.rcode);
  t.ok((await rcodes()).every((r) => r === 5), 'refused by every worker');
  const reload = async () => {
    const r = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  writeFileSync(conf, 'allow-net 127.0.1.0/24\nallow-net 127.0.2.0/24\n');
  t.match(await reload(), { status: 200, body: { workers: 2, config: { reloaded: true } } });
  t.ok((await rcodes()).every((r) => r === 0), 'answered by every worker after the reload');
  writeFileSync(conf, 'allow-net 127.0.2.0/24\ngroup guests 127.0.2.0/24\nblock guests nosuch\n');
  const bad = await reload();
  t.equal(bad.status, 400, 'a bad line: 400 from the primary');
  t.match(bad.body, { workers: 2, config: { reloaded: false, error: new RegExp(`^${conf.replace(/[.]/g, '\\.')}:3: unknown bundle "nosuch"`) } });
  t.ok((await rcodes()).every((r) => r === 0), 'the running settings stay in every worker');
});

t.test('SIGHUP with new upstream lines: the new upstreams answer, under load, with no query lost', async (t) => {
  const first = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.1' }] }));
  const second = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.2' }] }));
  t.teardown(() => Promise.all([first.close(), second.close()]));
  const conf = join(root, 'upstreams.conf');
  const dir = join(root, 'upstreams-lists');
  mkdirSync(dir);
  writeFileSync(conf, `upstream ${first.address}\n`);
  const port = await freePort();
  // No --upstream flag: the file's lines are the upstreams (a flag would win over them).
  const child = spawn(process.execPath, [CLI, 'serve', '--config', conf, '--listen', `127.0.0.1:${port}`, '--blocklists', dir,
    '--state-dir', join(root, 'upstreams-state'), '--history', 'off', '--rate-limit', '0', '--max-inflight-per-client', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  for (let waited = 0; !out.includes('"msg":"ready"') && waited < 15_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /"msg":"ready"/);
  // 20 clients asking names never asked before (no cache), while the upstreams change.
  let sent = 0;
  let lost = 0;
  let running = true;
  const seen: Record<string, number> = {};
  const client = async () => {
    while (running) {
      const reply = await udpExchange(port, buildQuery(`n${sent++}.example.org`, T.A, { id: sent & 0xffff }), 3000);
      const text = reply === null ? 'lost' : decode(reply).answers[0]?.text ?? `rcode ${decode(reply).rcode}`;
      if (text !== '192.0.2.1' && text !== '192.0.2.2') lost++;
      seen[text] = (seen[text] ?? 0) + 1;
    }
  };
  const clients = Array.from({ length: 20 }, () => client());
  await new Promise((r) => setTimeout(r, 500));
  writeFileSync(conf, `upstream ${second.address}\n`);
  child.kill('SIGHUP');
  for (let waited = 0; !out.includes('upstreams now') && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await Promise.all(clients);
  t.ok(sent > 200, `${sent} queries sent`);
  t.equal(lost, 0, `every query answered by one of the upstreams (${JSON.stringify(seen)})`);
  t.ok((seen['192.0.2.1'] ?? 0) > 0 && (seen['192.0.2.2'] ?? 0) > 0, 'the first upstream before, the second after');
  t.match(out, new RegExp(`upstreams now ${second.address.replace(/[.]/g, '\\.')}`));
  t.equal((await ask(port, 'after.example.org', T.A)).answers[0]?.text, '192.0.2.2', 'the new upstream answers');

  writeFileSync(conf, `upstream ${second.address}\nupstream tls://127.0.0.1\n`);
  child.kill('SIGHUP');
  for (let waited = 0; !out.includes('config reload failed') && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /config reload failed: [^"]*upstreams\.conf:2: /, 'a bad upstream line is refused');
  t.equal((await ask(port, 'after2.example.org', T.A)).answers[0]?.text, '192.0.2.2', 'the running upstreams stay');
});
