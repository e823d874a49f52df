// /metrics and /healthz of a fleet node carry sinkhole_fleet_connected and the policy
// version; POST /reload on a replica reloads the primary too.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { T } from '../helpers/dns.js';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { needRedis, startNode, startRedis, tempDir, within } from './helpers.js';

t.test('/metrics and /healthz show the fleet; POST /reload goes to the whole fleet', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir('p');
  writeFileSync(join(dir, 'a.txt'), 'a.example\n');
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p', role: 'primary', dir, stateDir: tempDir('s') });
  t.teardown(() => primary.close());
  const adminPort = await freePort();
  const replica = await startNode({ upstream: upstream.address, redis: redis.url, name: 'r', role: 'replica', dir: tempDir('o'), stateDir: tempDir('rs'),
    args: ['--admin', `127.0.0.1:${adminPort}`] });
  t.teardown(() => replica.close());
  const base = `http://127.0.0.1:${adminPort}`;
  const version = primary.server.fleet!.policyVersion;

  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.match(metrics, /^sinkhole_fleet_connected 1$/m, 'connected');
  t.match(metrics, new RegExp(`^sinkhole_fleet_policy_version ${version}$`, 'm'), 'the policy version');
  const health = (await (await fetch(`${base}/healthz`)).json()) as { fleet: Record<string, unknown> };
  t.match(health.fleet, { node: 'r', role: 'replica', connected: true, policyVersion: version }, '/healthz');

  const r = await fetch(`${base}/reload`, { method: 'POST' });
  t.equal(r.status, 200, 'POST /reload');
  t.ok(await within(2000, async () => primary.logs.some((l) => String(l.msg) === 'reload ordered by fleet node r')) >= 0, 'the primary reloads too');

  await redis.stop();
  t.ok(await within(2000, async () => /^sinkhole_fleet_connected 0$/m.test(await (await fetch(`${base}/metrics`)).text())) >= 0, 'disconnected shows 0');
});
