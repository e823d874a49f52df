// Policy sharing with a real redis-server: a primary and two replicas on loopback. A line
// appended on the primary is blocked by both replicas within 2 s; a reload ordered on a
// replica goes to the primary; a corrupt snapshot in Redis is rejected whole; a replica's
// own folder is ignored while it follows.
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import { needRedis, sleep, startNode, startRedis, tempDir, within } from './helpers.js';

const blocked = async (port: number, name: string): Promise<boolean> => (await ask(port, name, T.A)).answers[0]?.text === '127.0.0.1';

t.test('a primary and two replicas: an append on the primary is blocked on both replicas within 2 s', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const primaryDir = tempDir('primary');
  writeFileSync(join(primaryDir, 'messengers.txt'), 'icq.com\n');
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p1', role: 'primary', dir: primaryDir, stateDir: tempDir('state-p1') });
  t.teardown(() => primary.close());
  // The replicas' own folders say something else: they must be ignored.
  const own = tempDir('own');
  writeFileSync(join(own, 'local.txt'), 'example.org\n');
  const replicas: Awaited<ReturnType<typeof startNode>>[] = [];
  for (const name of ['r1', 'r2']) {
    const r = await startNode({ upstream: upstream.address, redis: redis.url, name, role: 'replica', dir: own, stateDir: tempDir(`state-${name}`) });
    t.teardown(() => r.close());
    replicas.push(r);
  }
  for (const r of replicas) {
    t.ok(await blocked(r.port, 'icq.com'), `${r.config.nodeName}: the primary's rule is in force at start`);
    t.notOk(await blocked(r.port, 'example.org'), `${r.config.nodeName}: its own folder is ignored`);
    t.ok(r.logs.some((l) => String(l.msg).includes('own blocklist folder') && String(l.msg).includes('ignored')), 'and it says so');
    t.equal(r.server.fleet!.policyVersion, primary.server.fleet!.policyVersion, 'it runs the primary\'s version');
  }

  // 20 appends, each one waited for on both replicas (the report gives p50/p99 over more, see docs/fleet.md).
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const name = `new${i}.example.net`;
    t.notOk(await blocked(replicas[0]!.port, name), `${name} is not blocked before`);
    const started = performance.now();
    appendFileSync(join(primaryDir, 'messengers.txt'), `${name}\n`);
    const waits = await Promise.all(replicas.map((r) => within(2000, () => blocked(r.port, name))));
    for (const [k, w] of waits.entries()) t.ok(w >= 0, `${name} blocked on r${k + 1} within 2 s`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  t.comment(`append on the primary -> blocked on both replicas: p50 ${times[9]!.toFixed(0)} ms, max ${times[19]!.toFixed(0)} ms over 20 appends`);

  // A file removed on the primary is removed on the replicas.
  writeFileSync(join(primaryDir, 'extra.txt'), 'extra.example.com\n');
  t.ok(await within(2000, () => blocked(replicas[1]!.port, 'extra.example.com')) >= 0, 'a new file reaches the replicas');
  const { rmSync } = await import('node:fs');
  rmSync(join(primaryDir, 'extra.txt'));
  t.ok(await within(2000, async () => !(await blocked(replicas[1]!.port, 'extra.example.com'))) >= 0, 'a removed file is removed on the replicas');

  // /healthz-like report and metrics.
  t.ok(await within(2000, async () => replicas[0]!.server.fleet!.policyVersion === primary.server.fleet!.policyVersion) >= 0, 'the replica reports the primary\'s version');
  t.match(replicas[0]!.server.fleet!.health(), { fleet: { role: 'replica', connected: true, policyVersion: primary.server.fleet!.policyVersion } });

  // A bundle enabled on the primary (`sinkhole enable`) is in force on every replica within 3 s.
  mkdirSync(join(primaryDir, 'available'));
  writeFileSync(join(primaryDir, 'available', 'signal.txt'), 'signal.org\n');
  const enabled = await new Promise<number>((resolve) => {
    execFile(process.execPath, [join(import.meta.dirname, '..', '..', 'dist', 'main', 'cli.js'), 'enable', 'signal', '--blocklists', primaryDir],
      (err) => resolve(err === null ? 0 : Number(err.code)));
  });
  t.equal(enabled, 0, 'sinkhole enable signal on the primary');
  const follow = await Promise.all(replicas.map((r) => within(3000, () => blocked(r.port, 'signal.org'))));
  t.ok(follow.every((ms) => ms >= 0), `both replicas block the enabled bundle (${follow.map((ms) => Math.round(ms)).join(', ')} ms)`);

  // A reload ordered on a replica reaches the primary (which republishes).
  await replicas[0]!.server.reload('SIGHUP');
  t.ok(await within(2000, async () => primary.logs.some((l) => String(l.msg).includes('reload ordered by fleet node r1'))) >= 0,
    'SIGHUP on r1 reloads the primary');
});

t.test('a corrupt or half-written snapshot is rejected whole', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  t.teardown(() => upstream.close());
  const primaryDir = tempDir('primary');
  writeFileSync(join(primaryDir, 'a.txt'), 'a.example\n');
  writeFileSync(join(primaryDir, 'b.txt'), 'b.example\n');
  const primary = await startNode({ upstream: upstream.address, redis: redis.url, name: 'p1', role: 'primary', dir: primaryDir, stateDir: tempDir('s') });
  const stateDir = tempDir('state-r');
  const replica = await startNode({ upstream: upstream.address, redis: redis.url, name: 'r1', role: 'replica', dir: tempDir('own'), stateDir });
  t.teardown(() => replica.close());
  const v1 = replica.server.fleet!.policyVersion;
  t.ok(v1 > 0 && await blocked(replica.port, 'a.example'), 'version 1 applied');
  await primary.close();

  // A version 2 written by hand: a.txt changed, b.txt changed too but its file never arrived (half-written).
  const { createHash } = await import('node:crypto');
  const h = (s: string): string => createHash('sha256').update(s).digest('hex');
  const files = { 'blocklists/a.txt': h('a.example\nc.example\n'), 'blocklists/b.txt': h('never stored\n') };
  const checksum = h(Object.keys(files).sort().map((p) => `${p} ${files[p as keyof typeof files]}\n`).join(''));
  redis.cli('SET', `sinkhole:blob:${files['blocklists/a.txt']}`, 'a.example\nc.example\n');
  redis.cli('SET', 'sinkhole:policy:manifest:99', JSON.stringify({ version: 99, node: 'x', at: '', files, checksum }));
  redis.cli('SET', 'sinkhole:policy:current', '99');
  redis.cli('PUBLISH', 'sinkhole:policy', '99');
  t.ok(await within(3000, async () => replica.logs.some((l) => String(l.msg).startsWith('fleet policy version 99 rejected'))) >= 0, 'rejected, and logged');
  t.notOk(await blocked(replica.port, 'c.example'), 'no part of it is applied');
  t.equal(replica.server.fleet!.policyVersion, v1, 'the replica keeps its version');

  // A file whose content does not match its hash: rejected too.
  redis.cli('SET', `sinkhole:blob:${files['blocklists/b.txt']}`, 'tampered\n');
  redis.cli('PUBLISH', 'sinkhole:policy', '99');
  await sleep(500);
  t.notOk(await blocked(replica.port, 'c.example'), 'a tampered file rejects the whole snapshot');
  t.ok(replica.server.fleet!.health().fleet, 'health carries the fleet');

  // A path outside the state folder is refused before anything is read.
  const evil = { '../../etc/x.txt': h('x') };
  redis.cli('SET', 'sinkhole:policy:manifest:100', JSON.stringify({ version: 100, node: 'x', at: '', files: evil, checksum: h(`../../etc/x.txt ${h('x')}\n`) }));
  redis.cli('SET', 'sinkhole:policy:current', '100');
  redis.cli('PUBLISH', 'sinkhole:policy', '100');
  t.ok(await within(3000, async () => replica.logs.some((l) => String(l.msg).includes('version 100 rejected') && String(l.msg).includes('not allowed'))) >= 0, 'a path outside is refused');
  t.notOk(existsSync(join(stateDir, '..', 'etc')), 'nothing written outside');
  t.equal(JSON.parse(readFileSync(join(stateDir, 'fleet', 'applied.json'), 'utf8')).version, v1, 'applied.json still says the old version');
});
