// Roles: one primary per fleet. A second `sinkhole serve --fleet-role primary` exits with
// status 1 within 10 s, naming the live primary; once the primary is gone (its lease
// expired, or released at a clean stop) another node can take over.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';
import { T } from '../helpers/dns.js';
import { needRedis, sleep, startNode, startRedis, tempDir } from './helpers.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js');

function runCli(args: string[], timeoutMs: number): Promise<{ status: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, ms: Date.now() - started });
    });
  });
}

t.test('a second primary is refused with status 1, naming the live one; takeover once the lease is gone', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const dir = tempDir('primary');
  writeFileSync(join(dir, 'a.txt'), 'a.example\n');
  const first = await startNode({ upstream: upstream.address, redis: redis.url, name: 'site1-a', role: 'primary', dir, stateDir: tempDir('s') });
  let firstClosed = false;
  t.teardown(() => (firstClosed ? undefined : first.close()));
  t.equal(redis.cli('GET', 'sinkhole:lease'), 'site1-a', 'the lease names the primary');

  const port = await freePort();
  const second = await runCli(['serve', '--listen', `127.0.0.1:${port}`, '--upstream', upstream.address, '--blocklists', dir, '--redis', redis.url,
    '--fleet-role', 'primary', '--node-name', 'site2-a', '--state-dir', tempDir('s2')], 15_000);
  t.equal(second.status, 1, 'exit status 1');
  t.ok(second.ms < 10_000, `within 10 s (${second.ms} ms)`);
  t.match(second.stderr, /another primary, "site1-a", holds the fleet lease/, 'the message names the live primary');
  t.match(second.stderr, /--fleet-role replica/, 'and says what to do');
  t.equal(second.stderr.trim().split('\n').length, 1, 'in one line');

  // The primary dies without releasing its lease (as a crash would): another takes over once it expires (3 s in the tests).
  await first.server.fleet!.link.close();
  await first.close();
  firstClosed = true;
  redis.cli('SET', 'sinkhole:lease', 'site1-a', 'PX', '1500');
  await t.rejects(startNode({ upstream: upstream.address, redis: redis.url, name: 'site2-a', role: 'primary', dir, stateDir: tempDir('s3') }),
    /another primary, "site1-a"/, 'refused while the lease lives');
  await sleep(1600);
  const takeover = await startNode({ upstream: upstream.address, redis: redis.url, name: 'site2-a', role: 'primary', dir, stateDir: tempDir('s3') });
  t.teardown(() => takeover.close());
  t.equal(redis.cli('GET', 'sinkhole:lease'), 'site2-a', 'the new primary holds the lease once it expired');
  const pttl = Number(redis.cli('PTTL', 'sinkhole:lease'));
  t.ok(pttl > 0 && pttl <= 3000, `with an expiry (${pttl} ms)`);
  await sleep(1500);
  t.equal(redis.cli('GET', 'sinkhole:lease'), 'site2-a', 'renewed');
  t.match(takeover.server.fleet!.health(), { fleet: { role: 'primary', leaseHeld: true } });
});
