// --workers with --redis: the node's primary process holds the one Redis link; its workers
// follow the fleet's policy (appends, bundles, pauses), count into the fleet's figures and
// share their cache answers through it. The replica runs as `sinkhole serve --workers 2`
// (real processes); the primary is in-process.
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import type { FleetView } from '../../src/fleet/view.js';
import { needRedis, startNode, startRedis, tempDir, within } from './helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
const blockedAll = async (port: number, name: string, n = 12): Promise<boolean> =>
  (await Promise.all(Array.from({ length: n }, () => ask(port, name, T.A)))).every((a) => a.answers[0]?.text === '127.0.0.1');
const notBlockedAll = async (port: number, name: string, n = 12): Promise<boolean> =>
  (await Promise.all(Array.from({ length: n }, () => ask(port, name, T.A)))).every((a) => a.answers[0]?.text === '192.0.2.7');

/**
 * Whether `pattern` shows in a child's output within 30 s. Starting a process and two workers
 * under the whole suite's load once took more than 15 s: start-up time is not what these
 * tests measure. The caller's assertion shows the output's end when it does not.
 */
const shows = async (output: () => string, pattern: string | RegExp): Promise<boolean> =>
  (await within(30_000, async () => (typeof pattern === 'string' ? output().includes(pattern) : pattern.test(output())), 50)) >= 0;

function fleetJson(url: string): Promise<FleetView> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'fleet', '--format', 'json', '--redis', url], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`sinkhole fleet: ${stderr}`));
      else resolve(JSON.parse(stdout) as FleetView);
    });
  });
}

t.test('a replica with --workers 2: one Redis link, both workers follow the policy, figures and cache go through the primary process', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  let upstreamQueries = 0;
  const upstream = await startUpstream((q) => {
    upstreamQueries++;
    return { answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] };
  });
  t.teardown(() => upstream.close());
  const primaryDir = tempDir('primary');
  mkdirSync(join(primaryDir, 'available'));
  writeFileSync(join(primaryDir, 'base.txt'), 'icq.com\n');
  writeFileSync(join(primaryDir, 'available', 'chat.txt'), 'chat.example\n');
  const primaryAdmin = await freePort();
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p', role: 'primary', dir: primaryDir, stateDir: tempDir('sp'),
    args: ['--admin', `127.0.0.1:${primaryAdmin}`] });
  t.teardown(() => primary.close());
  const clients = (): number => redis.cli('CLIENT', 'LIST').split('\n').filter((l) => l.includes('addr=')).length;
  const withPrimary = clients();

  // The replica: two workers, its own folder (ignored), its own state folder.
  const port = await freePort();
  const adminPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--workers', '2', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address,
    '--blocklists', tempDir('own'), '--state-dir', tempDir('sr'), '--redis', redis.url, '--fleet-role', 'replica', '--node-name', 'rw', '--site', 'south',
    '--admin', `127.0.0.1:${adminPort}`, '--rate-limit', '0', '--history', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  t.ok(await shows(() => out, '"all workers ready"'), 'both workers are ready', { output: out.slice(-2000) });
  const admin = `http://127.0.0.1:${adminPort}`;

  t.equal(clients() - withPrimary, withPrimary - 1, 'the replica holds as many Redis connections as one single-process node (one link, in its primary process)');
  t.ok(await blockedAll(port, 'icq.com'), 'every worker blocks the primary\'s rule');

  // An append on the primary, a bundle enabled on the primary: both workers follow.
  appendFileSync(join(primaryDir, 'base.txt'), 'appended.example\n');
  t.ok(await within(2000, () => blockedAll(port, 'appended.example')) >= 0, 'an append is blocked by every worker within 2 s');
  t.equal((await fetch(`http://127.0.0.1:${primaryAdmin}/api/bundles/enable?bundle=chat`, { method: 'POST' })).status, 200, 'chat enabled on the primary');
  t.ok(await within(3000, () => blockedAll(port, 'chat.example')) >= 0, 'every worker blocks chat.example within 3 s');

  // A pause through the replica's API (its primary process asks every worker): the whole fleet pauses, once.
  t.equal((await fetch(`${admin}/api/pause?for=1h`, { method: 'POST' })).status, 200, 'paused through the replica');
  t.ok(await within(2000, async () => (await notBlockedAll(port, 'icq.com')) && (await ask(primary.port, 'icq.com', T.A)).answers[0]?.text === '192.0.2.7') >= 0,
    'both workers and the primary stop blocking');
  t.equal(primary.logs.filter((l) => /^pause ordered by fleet node rw$/.test(String(l.msg))).length, 1, 'the primary got the order once, not once per worker');
  t.equal((await fetch(`http://127.0.0.1:${primaryAdmin}/api/resume`, { method: 'POST' })).status, 200, 'resumed on the primary');
  t.ok(await within(2000, () => blockedAll(port, 'icq.com')) >= 0, 'every worker blocks again within 2 s');

  // A reload ordered on the replica (SIGHUP to its primary process, passed to each worker) reaches the fleet's primary once.
  const before = primary.logs.filter((l) => String(l.msg) === 'reload ordered by fleet node rw').length;
  child.kill('SIGHUP');
  t.ok(await within(3000, async () => primary.logs.filter((l) => String(l.msg) === 'reload ordered by fleet node rw').length > before) >= 0, 'SIGHUP on the replica reloads the primary');
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(primary.logs.filter((l) => String(l.msg) === 'reload ordered by fleet node rw').length, before + 1, 'once');

  // The cache: answers the workers fetched are written to Redis and handed to the primary's cache.
  const asked = upstreamQueries;
  await Promise.all(Array.from({ length: 10 }, (_, i) => ask(port, `shared${i}.example.org`, T.A)));
  t.equal(upstreamQueries - asked, 10, 'ten new names fetched by the workers');
  // The names in the segments (binary batches, names in wire form), each counted once.
  const inSegments = "local seen, n = {}, 0 for _, k in ipairs(redis.call('KEYS', 'sinkhole:cache:seg:*')) do " +
    "for d in string.gmatch(redis.call('GET', k), 'shared(%d)') do if not seen[d] then seen[d] = true n = n + 1 end end end return n";
  t.ok(await within(3000, async () => Number(redis.cli('EVAL', inSegments, '0')) >= 10) >= 0, 'written to Redis through the primary process');
  t.ok(await within(3000, async () => {
    const n = upstreamQueries;
    await Promise.all(Array.from({ length: 10 }, (_, i) => ask(primary.port, `shared${i}.example.org`, T.A)));
    return upstreamQueries === n;
  }, 200) >= 0, 'the fleet\'s primary answers them from its cache (no upstream query)');

  // The figures: every query the workers answered, counted once, under the node's name.
  const m = await (await fetch(`${admin}/metrics`)).text();
  t.match(m, /^sinkhole_fleet_connected 1$/m, '/metrics of the workers\' node: connected');
  const answered = Number(/^sinkhole_queries_total\{verdict="blocked"\} (\d+)$/m.exec(m)?.[1] ?? 0) + Number(/^sinkhole_queries_total\{verdict="forwarded"\} (\d+)$/m.exec(m)?.[1] ?? 0)
    + Number(/^sinkhole_queries_total\{verdict="cached"\} (\d+)$/m.exec(m)?.[1] ?? 0);
  t.ok(answered > 50, `the workers answered ${answered} queries`);
  const complete = await within(12_000, async () => (await fleetJson(redis.url)).perNode.rw?.queries === answered, 500);
  t.ok(complete >= 0, 'the fleet figures hold exactly the queries the workers answered');
  // The heartbeat (every 3 s) carries the rule count the workers last reported.
  let beat: FleetView['nodes'][number] | undefined;
  const beating = await within(8000, async () => {
    const view = await fleetJson(redis.url);
    beat = view.nodes.find((n) => n.node === 'rw');
    return view.nodes.filter((n) => n.node === 'rw').length === 1 && beat?.up === true && beat.site === 'south' && beat.role === 'replica' && beat.rules === 3;
  }, 500);
  t.ok(beating >= 0, `one heartbeat for the node, with the workers' rule count (${JSON.stringify(beat)})`);
  const health = (await (await fetch(`${admin}/healthz`)).json()) as { workers: number; fleet: Record<string, unknown> };
  t.match(health, { workers: 2, fleet: { node: 'rw', role: 'replica', connected: true } }, '/healthz');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stops with status 0');
  t.ok(await within(3000, async () => clients() === withPrimary) >= 0, 'and its Redis link is closed');
});

t.test('a node started with --workers warms every worker\'s cache from the fleet\'s', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  let upstreamQueries = 0;
  const upstream = await startUpstream((q) => {
    upstreamQueries++;
    return { answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] };
  });
  t.teardown(() => upstream.close());
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p', role: 'primary', dir: tempDir('primary'), stateDir: tempDir('sp') });
  t.teardown(() => primary.close());
  const names = Array.from({ length: 20 }, (_, i) => `warm${i}.example.org`);
  for (const name of names) await ask(primary.port, name, T.A);
  t.equal(upstreamQueries, 20, 'the primary fetched 20 names');
  await primary.server.fleet!.flush();

  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--workers', '2', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address,
    '--blocklists', tempDir('own'), '--state-dir', tempDir('sr'), '--redis', redis.url, '--fleet-role', 'replica', '--node-name', 'rw',
    '--rate-limit', '0', '--history', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  t.ok(await shows(() => out, /the workers' caches warmed with 20 answers from the fleet/), 'the primary process read the 20 answers and handed them on',
    { output: out.slice(-2000) });
  // Each name asked 12 times: the queries are spread over both workers; none reaches the upstream.
  const before = upstreamQueries;
  const answered = await within(3000, async () => {
    const all = await Promise.all(names.flatMap((name) => Array.from({ length: 12 }, () => ask(port, name, T.A))));
    return all.every((a) => a.answers[0]?.text === '192.0.2.7');
  }, 100);
  t.ok(answered >= 0, 'every query answered');
  t.equal(upstreamQueries - before, 0, 'from the warmed caches: the upstream was not asked');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stops with status 0');
});

t.test('a second primary with --workers is refused before any worker starts', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream(() => ({ answers: [] }));
  t.teardown(() => upstream.close());
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p', role: 'primary', dir: tempDir('p'), stateDir: tempDir('sp') });
  t.teardown(() => primary.close());
  // Not spawnSync: the primary in this process must go on renewing its lease.
  const args = [CLI, 'serve', '--workers', '2', '--listen', `127.0.0.1:${await freePort()}`, '--upstream', upstream.address,
    '--blocklists', tempDir('o'), '--state-dir', tempDir('s2'), '--redis', redis.url, '--fleet-role', 'primary', '--node-name', 'p2'];
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, args, { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }));
  });
  t.equal(r.status, 1, 'exit status 1');
  t.match(r.stderr + r.stdout, /another primary, "p", holds the fleet lease/, 'one line naming the live primary');
  t.notMatch(r.stdout, /worker/, 'no worker was started');
});

t.test('a primary with --workers 2 publishes what its workers load: appends, pauses ordered on it, orders from a replica', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const primaryDir = tempDir('primary');
  mkdirSync(join(primaryDir, 'available'));
  writeFileSync(join(primaryDir, 'base.txt'), 'icq.com\n');
  writeFileSync(join(primaryDir, 'available', 'chat.txt'), 'chat.example\n');
  const port = await freePort();
  const adminPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--workers', '2', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address,
    '--blocklists', primaryDir, '--state-dir', tempDir('sp'), '--redis', redis.url, '--fleet-role', 'primary', '--node-name', 'pw',
    '--admin', `127.0.0.1:${adminPort}`, '--rate-limit', '0', '--history', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  t.ok(await shows(() => out, '"all workers ready"'), 'both workers are ready', { output: out.slice(-2000) });
  const replicaAdmin = await freePort();
  const replica = await startNode({ upstream: upstream.address, redis: redis.url, name: 'r', role: 'replica', dir: tempDir('own'), stateDir: tempDir('sr'),
    args: ['--admin', `127.0.0.1:${replicaAdmin}`] });
  t.teardown(() => replica.close());
  const one = async (p: number, name: string): Promise<boolean> => (await ask(p, name, T.A)).answers[0]?.text === '127.0.0.1';
  t.ok(await one(replica.port, 'icq.com'), 'the replica follows the primary\'s folder');

  // Two appends in quick succession: both reach the replica (no reload notice is swallowed).
  appendFileSync(join(primaryDir, 'base.txt'), 'first.example\n');
  await new Promise((r) => setTimeout(r, 150));
  appendFileSync(join(primaryDir, 'base.txt'), 'second.example\n');
  t.ok(await within(2000, async () => (await one(replica.port, 'first.example')) && (await one(replica.port, 'second.example'))) >= 0, 'both appends are blocked on the replica within 2 s');

  // A pause through the primary's API (every worker applies it, the primary process publishes it).
  t.equal((await fetch(`http://127.0.0.1:${adminPort}/api/pause?for=1h`, { method: 'POST' })).status, 200, 'paused on the primary');
  t.ok(await within(2000, async () => !(await one(replica.port, 'icq.com')) && (await notBlockedAll(port, 'icq.com'))) >= 0, 'the replica and both workers stop blocking');
  // Resumed through the replica: the primary process has its workers resume, then publishes.
  t.equal((await fetch(`http://127.0.0.1:${replicaAdmin}/api/resume`, { method: 'POST' })).status, 200, 'resumed on the replica');
  t.ok(await within(3000, async () => (await one(replica.port, 'icq.com')) && (await blockedAll(port, 'icq.com'))) >= 0, 'every worker and the replica block again');
  // A bundle enabled through the replica: the primary process moves the file, its workers reload, it publishes.
  const enabled = await fetch(`http://127.0.0.1:${replicaAdmin}/api/bundles/enable?bundle=chat`, { method: 'POST' });
  t.equal(enabled.status, 200, 'chat enabled through the replica');
  t.ok(await within(3000, async () => (await one(replica.port, 'chat.example')) && (await blockedAll(port, 'chat.example'))) >= 0, 'blocked by both workers and the replica');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stops with status 0');
  t.equal(redis.cli('GET', 'sinkhole:lease'), '', 'and releases the lease');
});
