// Redis failures. A replica started while Redis is down serves its last applied policy and
// catches up when Redis is back; Redis killed under load loses no query; the primary
// publishes again when Redis comes back empty.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import { needRedis, sleep, startNode, startRedis, tempDir, within } from './helpers.js';

const blocked = async (port: number, name: string): Promise<boolean> => (await ask(port, name, T.A)).answers[0]?.text === '127.0.0.1';

t.test('a replica started while Redis is down serves its last policy, and catches up when Redis returns', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir('primary');
  writeFileSync(join(dir, 'a.txt'), 'first.example\n');
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p', role: 'primary', dir, stateDir: tempDir('s') });
  t.teardown(() => primary.close());
  const stateDir = tempDir('replica-state');
  const own = tempDir('own');
  writeFileSync(join(own, 'own.txt'), 'own.example\n');
  const r1 = await startNode({ upstream: upstream.address, redis: redis.url, name: 'r', role: 'replica', dir: own, stateDir });
  t.ok(await blocked(r1.port, 'first.example'), 'the replica runs the primary\'s policy');
  await r1.close();

  // Redis goes away; the primary's folder changes meanwhile.
  await redis.stop();
  appendFileSync(join(dir, 'a.txt'), 'second.example\n');
  const started = Date.now();
  const r2 = await startNode({ upstream: upstream.address, redis: redis.url, name: 'r', role: 'replica', dir: own, stateDir });
  t.teardown(() => r2.close());
  t.ok(Date.now() - started < 3000, `it starts without Redis (${Date.now() - started} ms)`);
  t.ok(await blocked(r2.port, 'first.example'), 'it serves the last applied policy from its state folder');
  t.notOk(await blocked(r2.port, 'own.example'), 'not its own folder');
  t.equal(r2.logs.filter((l) => String(l.msg).includes('unreachable')).length, 1, 'the outage is logged in one line');
  t.match(r2.server.fleet!.health(), { fleet: { connected: false } });

  await redis.start();
  // Redis came back empty: the primary publishes again, the replica catches up (within 15 s; here within about 3).
  const ms = await within(15_000, () => blocked(r2.port, 'second.example'), 50);
  t.ok(ms >= 0, `caught up ${Math.round(ms)} ms after Redis returned`);
  t.ok(r2.logs.some((l) => String(l.msg).includes('reachable again')), 'and said Redis is back');
  t.match(r2.server.fleet!.health(), { fleet: { connected: true } });
});

t.test('Redis killed under load: no query lost, none waits', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir('primary');
  writeFileSync(join(dir, 'a.txt'), 'blocked.example\n');
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p', role: 'primary', dir, stateDir: tempDir('s') });
  t.teardown(() => primary.close());
  const replica = await startNode({ upstream: upstream.address, redis: redis.url, name: 'r', role: 'replica', dir: tempDir('own'), stateDir: tempDir('rs') });
  t.teardown(() => replica.close());

  let sent = 0;
  let answered = 0;
  let slowest = 0;
  const failures: string[] = [];
  let running = true;
  const load = async (port: number, worker: number): Promise<void> => {
    for (let i = 0; running; i++) {
      const name = i % 5 === 0 ? 'blocked.example' : `n${worker}-${i % 400}.example.com`;
      const startedAt = performance.now();
      sent++;
      try {
        const r = await ask(port, name, T.A);
        const want = name === 'blocked.example' ? '127.0.0.1' : '192.0.2.7';
        if (r.answers[0]?.text === want) answered++;
        else failures.push(`${name}: ${r.answers[0]?.text ?? `rcode ${r.rcode}`}`);
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`);
      }
      slowest = Math.max(slowest, performance.now() - startedAt);
    }
  };
  const workers = [0, 1, 2, 3].map((w) => load(w % 2 === 0 ? primary.port : replica.port, w));
  await sleep(700);
  await redis.stop();
  await sleep(1500);
  await redis.start();
  await sleep(1500);
  running = false;
  await Promise.all(workers);
  t.ok(sent > 200, `${sent} queries sent`);
  t.equal(answered, sent, 'every query answered correctly');
  t.same(failures.slice(0, 5), [], 'no failures');
  // Redis is away for 1.5 s: a query that waited on it would take over a second. 1 s, not
  // less, because both nodes and this client share one thread on a loaded machine.
  t.ok(slowest < 1000, `the slowest answer took ${slowest.toFixed(0)} ms (a wait on Redis would take over 1 s)`);
  t.ok(await within(5000, async () => primary.server.fleet!.link.connected && replica.server.fleet!.link.connected) >= 0, 'both reconnected');
});
