// Fleet figures: every node adds its hourly counts into Redis and writes a heartbeat; the
// fleet view (sinkhole fleet, sinkhole stats --fleet) adds up exactly the queries sent to
// each node, per site, node, client and bundle, and shows a silent node as down.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import type { FleetView } from '../../src/fleet/view.js';
import { needRedis, sleep, startNode, startRedis, tempDir, within } from './helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');

/** Runs the CLI without blocking this process's event loop (the nodes under test live in it). */
function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

async function fleetJson(url: string): Promise<FleetView> {
  const r = await cli(['fleet', '--format', 'json', '--redis', url]);
  if (r.status !== 0) throw new Error(`sinkhole fleet exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as FleetView;
}

t.test('the fleet figures add up exactly the queries sent to each node', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir('p');
  writeFileSync(join(dir, 'whatsapp.txt'), 'whatsapp.net\n');
  writeFileSync(join(dir, 'telegram.txt'), 'telegram.org\n');
  const nodes = [
    await startNode({ upstream: upstream.address, redis: redis.url, name: 'north-1', site: 'north', role: 'primary', dir, stateDir: tempDir('s1') }),
    await startNode({ upstream: upstream.address, redis: redis.url, name: 'north-2', site: 'north', role: 'replica', dir: tempDir('o'), stateDir: tempDir('s2') }),
    await startNode({ upstream: upstream.address, redis: redis.url, name: 'south-1', site: 'south', role: 'replica', dir: tempDir('o'), stateDir: tempDir('s3') }),
  ];
  const closed = new Set<number>();
  t.teardown(() => Promise.all(nodes.map((n, i) => (closed.has(i) ? undefined : n.close()))));

  // Known traffic: node i gets from client 127.0.0.(i+2) `plain[i]` forwarded names, `wa[i]` whatsapp and `tg[i]` telegram queries.
  const plain = [7, 4, 9];
  const wa = [3, 0, 5];
  const tg = [1, 2, 0];
  for (const [i, n] of nodes.entries()) {
    const from = `127.0.0.${i + 2}`;
    for (let k = 0; k < plain[i]!; k++) await ask(n.port, `name${k}.example.com`, T.A, { from });
    for (let k = 0; k < wa[i]!; k++) await ask(n.port, 'web.whatsapp.net', T.A, { from });
    for (let k = 0; k < tg[i]!; k++) await ask(n.port, 'telegram.org', T.AAAA, { from });
  }
  // Within two flush periods (1 s here; 5 s by default) everything is in Redis.
  const total = (i: number): number => plain[i]! + wa[i]! + tg[i]!;
  const complete = await within(5000, async () => {
    const v = await fleetJson(redis.url);
    return nodes.every((n, i) => v.perNode[n.config.nodeName]?.queries === total(i));
  }, 200);
  t.ok(complete >= 0, `the counts are complete after ${Math.round(complete)} ms`);

  const v = await fleetJson(redis.url);
  for (const [i, n] of nodes.entries()) {
    t.same(v.perNode[n.config.nodeName], { queries: total(i), blocked: wa[i]! + tg[i]! }, `${n.config.nodeName}: exactly what was sent`);
  }
  t.same(v.sites, { north: { queries: total(0) + total(1), blocked: 3 + 0 + 1 + 2 }, south: { queries: total(2), blocked: 5 } }, 'per site');
  t.same(v.clients.map((c) => [c.site, c.client, c.queries, c.blocked]).sort(),
    [['north', '127.0.0.2', 11, 4], ['north', '127.0.0.3', 6, 2], ['south', '127.0.0.4', 14, 5]], 'per client');
  t.same(v.bundles.map((b) => [b.site, b.bundle, b.blocked]).sort(),
    [['north', 'telegram', 3], ['north', 'whatsapp', 3], ['south', 'whatsapp', 5]], 'per bundle');
  t.equal(v.nodes.length, 3, 'three heartbeats');
  t.ok(v.nodes.every((n) => n.up && n.policyVersion === v.policyVersion && n.rules === 2), 'all up, on the same policy version, 2 rules each');
  t.same(v.nodes.map((n) => [n.node, n.queries]), [['north-1', total(0)], ['north-2', total(1)], ['south-1', total(2)]], 'heartbeats carry each node\'s count');

  // A node that stops beating is shown down (3 beats: 1.5 s here).
  await nodes[2]!.server.fleet!.link.close();
  await nodes[2]!.close();
  closed.add(2);
  await sleep(1800);
  const after = await fleetJson(redis.url);
  t.same(after.nodes.map((n) => [n.node, n.up]), [['north-1', true], ['north-2', true], ['south-1', false]], 'south-1 is down');
  const text = await cli(['stats', '--fleet', '--redis', redis.url]);
  t.equal(text.status, 0, 'sinkhole stats --fleet');
  t.match(text.stdout, /fleet: 3 nodes \(2 up, 1 down\)/);
  t.match(text.stdout, /DOWN {2}south\/south-1 {2}replica/);
  t.match(text.stdout, /site north: 17 queries, 6 blocked/);

  // Redis unreachable: exit status 3 with one line.
  await redis.stop();
  const down = await cli(['fleet', '--redis', redis.url]);
  t.equal(down.status, 3, 'exit 3 when Redis does not answer');
  t.match(down.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ within 3 s/);
});
