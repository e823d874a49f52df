// Shared policy state with a real redis-server: pauses ordered on any node, bundles enabled
// or disabled from available/ (on the primary or through a replica), list-url lists fetched
// by the primary only, and a reload ordered on a replica reaching the other replicas.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, type TestServer } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { needRedis, startNode, startRedis, tempDir, within, type NodeOptions } from './helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');
/** The CLI, without blocking this process (the nodes under test live in it). */
const cli = (args: string[]): Promise<{ status: number; stdout: string; stderr: string }> => new Promise((resolve) => {
  execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
    resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
  });
});
const blocked = async (port: number, name: string): Promise<boolean> => (await ask(port, name, T.A)).answers[0]?.text === '127.0.0.1';
const post = async (port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST' });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
/** Whether `probe` holds on every node within `ms`. */
const onAll = async (nodes: TestServer[], ms: number, probe: (n: TestServer) => Promise<boolean>): Promise<boolean> =>
  (await Promise.all(nodes.map((n) => within(ms, () => probe(n))))).every((w) => w >= 0);

interface Fleet {
  primary: TestServer;
  replicas: TestServer[];
  admin: Map<TestServer, number>;
  primaryDir: string;
}

async function startFleet(t: Test, redisUrl: string, upstream: string, policy: NodeOptions['policy'] = [], primaryFiles: Record<string, string> = {}): Promise<Fleet> {
  const primaryDir = tempDir('primary');
  mkdirSync(join(primaryDir, 'available'));
  writeFileSync(join(primaryDir, 'base.txt'), 'icq.com\n');
  for (const [name, text] of Object.entries(primaryFiles)) writeFileSync(join(primaryDir, name), text);
  const admin = new Map<TestServer, number>();
  const start = async (name: string, role: 'primary' | 'replica', dir: string): Promise<TestServer> => {
    const port = await freePort();
    const n = await startNode({ upstream, redis: redisUrl, name, role, dir, stateDir: tempDir(`state-${name}`), policy, args: ['--admin', `127.0.0.1:${port}`] });
    t.teardown(() => n.close());
    admin.set(n, port);
    return n;
  };
  const primary = await start('p', 'primary', primaryDir);
  const replicas = [await start('r1', 'replica', tempDir('own1')), await start('r2', 'replica', tempDir('own2'))];
  return { primary, replicas, admin, primaryDir };
}

t.test('a pause ordered on any node applies to the whole fleet, runs out everywhere, and a resume anywhere ends it', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const f = await startFleet(t, redis.url, upstream.address);
  const all = [f.primary, ...f.replicas];
  t.ok(await onAll(all, 3000, (n) => blocked(n.port, 'icq.com')), 'icq.com is blocked on every node before');

  // Paused on a replica for 3 s: every node stops blocking, then blocks again by itself.
  const r = await post(f.admin.get(f.replicas[0]!)!, '/api/pause?for=3s');
  t.equal(r.status, 200, 'POST /api/pause on r1');
  const started = performance.now();
  t.ok(await onAll(all, 2000, async (n) => !(await blocked(n.port, 'icq.com'))), 'the pause is in force on the primary and on both replicas within 2 s');
  t.ok(f.primary.server.groups.pause.list().length === 1 && f.primary.server.groups.pause.list()[0]!.until! > Date.now(), 'the primary holds the pause, with its expiry');
  t.equal(f.replicas[1]!.server.groups.pause.list()[0]?.until, f.primary.server.groups.pause.list()[0]?.until, 'r2 has the same expiry as the primary');
  t.ok(await onAll(all, 5000, (n) => blocked(n.port, 'icq.com')), 'blocking comes back on every node when the pause runs out');
  t.ok(performance.now() - started >= 2500, 'and not before the 3 s are (about) over');

  // Paused on the primary until resume; resumed from the other replica.
  t.equal((await post(f.admin.get(f.primary)!, '/api/pause')).status, 200, 'POST /api/pause on the primary');
  t.ok(await onAll(all, 2000, async (n) => !(await blocked(n.port, 'icq.com'))), 'paused everywhere within 2 s');
  t.equal((await post(f.admin.get(f.replicas[1]!)!, '/api/resume')).status, 200, 'POST /api/resume on r2');
  t.ok(await onAll(all, 2000, (n) => blocked(n.port, 'icq.com')), 'blocking is back on every node within 2 s');

  // The same through the command line: `sinkhole pause` on a replica, `sinkhole resume` on the primary.
  const paused = await cli(['pause', '--for', '30m', '--admin', `127.0.0.1:${f.admin.get(f.replicas[1]!)!}`]);
  t.equal(paused.status, 0, `sinkhole pause on r2: ${paused.stdout.trim()}`);
  t.ok(await onAll(all, 2000, async (n) => !(await blocked(n.port, 'icq.com'))), 'paused everywhere within 2 s');
  t.ok(Math.abs(f.primary.server.groups.pause.list()[0]!.until! - (Date.now() + 30 * 60_000)) < 10_000, 'for 30 minutes, on the primary too');
  const resumed = await cli(['resume', '--admin', `127.0.0.1:${f.admin.get(f.primary)!}`]);
  t.equal(resumed.status, 0, 'sinkhole resume on the primary');
  t.ok(await onAll(all, 2000, (n) => blocked(n.port, 'icq.com')), 'blocking is back on every node within 2 s');
  t.same(f.primary.server.groups.pause.list(), [], 'the primary has no pause left');
  t.ok(existsSync(join(f.replicas[0]!.config.stateDir, 'pause.json')), 'a replica keeps the fleet\'s pauses in its state folder (restart with Redis down)');
});

t.test('a bundle enabled or disabled from available/ on the primary, or through a replica, is followed by every node within 3 s', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const f = await startFleet(t, redis.url, upstream.address, [], { 'available/chat.txt': 'chat.example\n', 'available/games.txt': 'games.example\n' });
  const all = [f.primary, ...f.replicas];
  for (const n of f.replicas) t.ok(existsSync(join(n.config.stateDir, 'fleet', 'blocklists', 'available', 'chat.txt')), `${n.config.nodeName} has the primary's available/ bundles`);
  t.notOk(await blocked(f.replicas[0]!.port, 'chat.example'), 'chat is not enabled yet');

  t.equal((await post(f.admin.get(f.primary)!, '/api/bundles/enable?bundle=chat')).status, 200, 'enabled on the primary');
  t.ok(await onAll(f.replicas, 3000, (n) => blocked(n.port, 'chat.example')), 'both replicas block chat.example within 3 s');

  const r = await post(f.admin.get(f.replicas[1]!)!, '/api/bundles/enable?bundle=games');
  t.equal(r.status, 200, `enabled through r2 (${JSON.stringify(r.body)})`);
  t.match(r.body, { applied: true, sentTo: 'p' }, 'r2 says the primary carried it out');
  t.ok(existsSync(join(f.primaryDir, 'games.txt')), 'the file moved in the primary\'s folder');
  t.ok(await onAll(all, 3000, (n) => blocked(n.port, 'games.example')), 'every node blocks games.example within 3 s');

  t.equal((await post(f.admin.get(f.replicas[0]!)!, '/api/bundles/disable?bundle=chat')).status, 200, 'disabled through r1');
  t.ok(await onAll(all, 3000, async (n) => !(await blocked(n.port, 'chat.example'))), 'no node blocks chat.example within 3 s');
  t.equal((await post(f.admin.get(f.replicas[0]!)!, '/api/bundles/enable?bundle=nosuch')).status, 202, 'an unknown bundle: the primary refuses, no new version (202)');
  t.ok(f.primary.logs.some((l) => /not carried out: no bundle "nosuch"/.test(String(l.msg))), 'and the primary logs why');

  // A name blocked through a replica's console goes into the primary's local.txt.
  t.equal((await post(f.admin.get(f.replicas[0]!)!, '/api/block?name=console.example')).status, 200, 'blocked through r1');
  t.ok(await onAll(all, 3000, (n) => blocked(n.port, 'console.example')), 'every node blocks console.example');
});

t.test('list-url: the primary fetches, publishes with the snapshot; replicas fetch nothing and follow within 3 s', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  let body = 'ads.example\n';
  const fetchedBy: string[] = [];
  const http = createServer((req, res) => {
    fetchedBy.push(String(req.headers['user-agent']));
    res.end(body);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => http.close());
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/ads.txt`;
  const f = await startFleet(t, redis.url, upstream.address, [{ name: 'list-url', value: `ads ${url}` }]);
  const all = [f.primary, ...f.replicas];
  t.ok(await onAll(all, 5000, (n) => blocked(n.port, 'ads.example')), 'every node blocks the list\'s name (first fetch within 2 s, then the snapshot)');
  t.equal(fetchedBy.length, 1, 'fetched once: by the primary only');
  for (const n of f.replicas) t.notOk(existsSync(join(n.config.stateDir, 'lists', 'ads.txt')), `${n.config.nodeName} fetched nothing itself`);

  body = 'ads.example\nmore-ads.example\n';
  const u = await post(f.admin.get(f.primary)!, '/api/lists/update');
  t.equal(u.status, 200, 'lists update on the primary');
  t.ok(await onAll(f.replicas, 3000, (n) => blocked(n.port, 'more-ads.example')), 'the new copy is in force on both replicas within 3 s');
  t.equal(fetchedBy.length, 2, 'still only the primary fetches');
});

t.test('a reload ordered on a replica reloads the primary and the other replica', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const f = await startFleet(t, redis.url, upstream.address);
  const before = f.replicas[1]!.server.reloader.onReload;
  let reasons: string[] = [];
  f.replicas[1]!.server.reloader.onReload = (r) => {
    before?.(r);
    reasons.push(r.reason);
  };
  reasons = [];
  t.equal((await post(f.admin.get(f.replicas[0]!)!, '/reload')).status, 200, 'POST /reload on r1');
  t.ok(await within(3000, async () => f.primary.logs.some((l) => String(l.msg) === 'reload ordered by fleet node r1')) >= 0, 'the primary reloads');
  t.ok(await within(3000, async () => reasons.includes('fleet reload')) >= 0, `r2 reloads too (reasons: ${reasons.join(', ')})`);
  reasons = [];
  t.equal((await post(f.admin.get(f.primary)!, '/reload')).status, 200, 'POST /reload on the primary');
  t.ok(await within(3000, async () => reasons.includes('fleet reload')) >= 0, 'r2 reloads');
});
