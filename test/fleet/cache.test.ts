// Cache sharing: an answer one node got from its upstream answers on another node, running
// or started later, without asking that node's upstream; Redis is never asked on the query
// path (the answers travel in batches).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import { decodeBatch, encodeBatch } from '../../src/fleet/shared-cache.js';
import { needRedis, sleep, startNode, startRedis, tempDir, within } from './helpers.js';

t.test('a cache entry written by one node answers on another', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  // Two upstreams that answer differently: where an answer came from shows in its address.
  const upA = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.1' }] }));
  const upB = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.2' }] }));
  t.teardown(() => Promise.all([upA.close(), upB.close()]));
  const dir = tempDir('p');
  writeFileSync(join(dir, 'a.txt'), 'blocked.example\n');
  const a = await startNode({ upstream: upA.address, redis: redis.url, name: 'a', role: 'primary', dir, stateDir: tempDir('sa') });
  t.teardown(() => a.close());
  const b = await startNode({ upstream: upB.address, redis: redis.url, name: 'b', role: 'replica', dir: tempDir('o'), stateDir: tempDir('sb') });
  t.teardown(() => b.close());

  const first = await ask(a.port, 'shared.example.com', T.A);
  t.equal(first.answers[0]?.text, '192.0.2.1', 'node a asks its upstream');
  // After the batch (100 ms here), node b answers from the shared entry.
  const ms = await within(2000, async () => b.server.fleet!.cache.received > 0);
  t.ok(ms >= 0, `node b took the batch in (${Math.round(ms)} ms)`);
  const onB = await ask(b.port, 'shared.example.com', T.A);
  t.equal(onB.answers[0]?.text, '192.0.2.1', 'node b answers with node a\'s answer');
  t.ok(onB.answers[0]!.ttl <= 300 && onB.answers[0]!.ttl >= 298, `with the TTL aged (${onB.answers[0]!.ttl})`);
  t.equal(upB.queries.length, 0, 'node b\'s upstream was not asked');
  t.ok(redis.cli('KEYS', 'sinkhole:cache:*').split('\n').length >= 1, 'the entry is in Redis');
  const ttl = Number(redis.cli('TTL', redis.cli('KEYS', 'sinkhole:cache:*').split('\n')[0]!));
  t.ok(ttl > 250, `with its lifetime (${ttl} s)`);

  // A node started later, with an empty cache, warms itself from Redis.
  const c = await startNode({ upstream: upB.address, redis: redis.url, name: 'c', role: 'replica', dir: tempDir('o'), stateDir: tempDir('sc') });
  t.teardown(() => c.close());
  t.ok(c.server.fleet!.cache.warmed >= 1, `node c warmed ${c.server.fleet!.cache.warmed} answers`);
  t.equal((await ask(c.port, 'shared.example.com', T.A)).answers[0]?.text, '192.0.2.1', 'and answers from them');
  t.equal(upB.queries.length, 0, 'without asking its upstream');

  // The query path never waits on Redis: with Redis stopped, cached and new names answer at once.
  await redis.stop();
  const started = performance.now();
  t.equal((await ask(b.port, 'shared.example.com', T.A)).answers[0]?.text, '192.0.2.1', 'cached answer with Redis down');
  t.equal((await ask(b.port, 'fresh.example.com', T.A)).answers[0]?.text, '192.0.2.2', 'new name with Redis down');
  t.ok(performance.now() - started < 200, 'promptly');
  await sleep(300);
});

t.test('cache batches: what is encoded is decoded; a damaged message is refused', async (t) => {
  const answers = [Buffer.from('one answer'), Buffer.alloc(70_000, 7)];
  const msg = encodeBatch('node-1', ['k\x00\x01', 'other'], answers, [30, 86400]);
  const back = decodeBatch(msg);
  t.equal(back?.node, 'node-1');
  t.same(back?.entries.map((e) => [e.key, e.answer.length, e.ttl]), [['k\x00\x01', 10, 30], ['other', 70_000, 86400]]);
  t.equal(decodeBatch(msg.subarray(0, msg.length - 1)), null, 'a truncated batch is refused');
  t.equal(decodeBatch(Buffer.from([9, 1, 2])), null, 'a batch shorter than its name is refused');
});
