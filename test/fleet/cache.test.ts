// Cache sharing: an answer one node got from its upstream answers on another node, running
// or started later, without asking that node's upstream; Redis is never asked on the query
// path (the answers travel in batches).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import { KEYS } from '../../src/fleet/keys.js';
import { RedisLink } from '../../src/fleet/link.js';
import { decodeBatch, encodeBatch, isFrom, WriteThroughCache } from '../../src/fleet/shared-cache.js';
import type { Logger } from '../../src/observe/log.js';
import { packAnswer } from '../../src/wire/packed-answer.js';
import { inspectResponse } from '../../src/wire/response.js';
import { buildQuery } from '../helpers/dns.js';
import { buildReply, type UpstreamQuery } from '../helpers/upstream.js';
import { needRedis, sleep, startNode, startRedis, tempDir, within, type TestRedis } from './helpers.js';

/** The shared-cache segment keys whose batch holds `label` (a Lua scan: the values are binary, names in wire form). */
function segmentsHolding(redis: TestRedis, label: string): string[] {
  const script = "local out = {} for _, k in ipairs(redis.call('KEYS', 'sinkhole:cache:seg:*')) do " +
    "if string.find(redis.call('GET', k), ARGV[1], 1, true) then table.insert(out, k) end end return out";
  return redis.cli('EVAL', script, '0', label).split('\n').filter((k) => k !== '');
}

/** A packed upstream answer for `name` (A, the address given, TTL 300), as the cache stores it. */
function packed(name: string, address: string): Buffer {
  const msg = buildQuery(name, T.A, { id: 1, edns: false });
  const q: UpstreamQuery = { id: 1, rawName: name, name, type: T.A, class: 1, tcp: false, msg, udpSize: 0, from: { address: '127.0.0.1', port: 1 } };
  const wire = buildReply(q, { answers: [{ name, type: T.A, ttl: 300, data: address }] });
  return packAnswer(wire, inspectResponse(wire, 12 + name.length + 2 + 4)!, Date.now());
}

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
  const segment = await within(2000, async () => segmentsHolding(redis, 'shared').length === 1);
  t.ok(segment >= 0, 'the entry is in one segment in Redis');
  const ttl = Number(redis.cli('TTL', segmentsHolding(redis, 'shared')[0]!));
  // As long as the node keeps it: the TTL (300 s) and the serve-stale window (a day by default).
  t.ok(ttl > 250 + 86_400 && ttl <= 300 + 86_400, `with its lifetime in the cache (${ttl} s)`);

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

t.test('segments: one per lifetime class and flush; warming takes the newest answer and drops the expired', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined } as unknown as Logger;
  /** A node's link to this Redis and its shared cache (flushed only when the test says). */
  const node = async (name: string): Promise<{ link: RedisLink; cache: WriteThroughCache }> => {
    const link = new RedisLink({ url: redis.url, passwordFile: null, ca: null, maxBackoffMs: 200 }, quiet);
    t.teardown(() => link.close());
    t.ok(await link.start(3000), `node ${name} connected`);
    const cache = new WriteThroughCache(100);
    await cache.share(link, 3_600_000, name);
    t.teardown(() => cache.close());
    return { link, cache };
  };

  // Writing: 40 answers with lifetimes 300 and 20 in one flush are two keys, not 40.
  const { link, cache: writer } = await node('w');
  // Another node on the channel: it takes in what the segments hold (each is published as it is stored).
  const { cache: other } = await node('o');
  for (let i = 0; i < 20; i++) writer.put(`long${i}.example|1`, packed(`long${i}.example`, '192.0.2.9'), 300);
  for (let i = 0; i < 20; i++) writer.put(`short${i}.example|1`, packed(`short${i}.example`, '192.0.2.9'), 20);
  await writer.flush();
  const keys = redis.cli('KEYS', 'sinkhole:cache:*').split('\n').filter((k) => k !== '');
  t.equal(keys.length, 2, `two segments (${keys.join(', ')})`);
  const lives = keys.map((k) => Number(redis.cli('TTL', k))).sort((a, b) => a - b);
  t.ok(lives[0]! > 15 && lives[0]! <= 20 && lives[1]! > 295 && lives[1]! <= 300, `each lives as long as its longest answer (${lives.join(', ')} s)`);
  t.equal(writer.written, 40, 'all 40 counted as written');
  t.ok(await within(2000, async () => other.received === 40) >= 0, `the other node took in all 40 from the channel (${other.received})`);
  t.ok(other.get('long3.example|1') !== undefined && other.get('short7.example|1') !== undefined, 'from both segments');
  t.equal(writer.received, 0, 'the writer does not take its own batches back');
  await link.send(['DEL', ...keys]);

  // Warming: an older and a newer segment both hold "same"; the newer answer wins; an answer
  // whose lifetime ran out since its segment was written is dropped, however long the segment lives.
  const now = Date.now();
  const older = encodeBatch('a', ['same|1', 'old-only|1', 'gone|1'], [packed('same', '192.0.2.1'), packed('old-only', '192.0.2.1'), packed('gone', '192.0.2.1')], [300, 300, 30]);
  const newer = encodeBatch('b', ['same|1'], [packed('same', '192.0.2.2')], [300]);
  await link.send(['SET', KEYS.cacheSegment(now - 60_000, 'a', 0), older, 'EX', '300']);
  await link.send(['SET', KEYS.cacheSegment(now - 5_000, 'b', 0), newer, 'EX', '300']);
  await link.send(['SET', 'sinkhole:cache:seg:not-a-time:0:x', newer, 'EX', '300']);
  await link.send(['SET', KEYS.cacheSegment(now, 'c', 0), Buffer.from([200, 1, 2]), 'EX', '300']);
  const reader = new WriteThroughCache(100);
  t.equal(await reader.warm(link, 100, 2000), 2, 'two answers warmed (same, old-only); the damaged segment and the odd key skipped');
  const ip = (p: Buffer | undefined) => (p === undefined ? null : [...p.subarray(p.length - 4)].join('.'));
  t.equal(ip(reader.get('same|1')), '192.0.2.2', 'the newer segment\'s answer');
  t.equal(ip(reader.get('old-only|1')), '192.0.2.1', 'an answer only the older segment has');
  t.equal(reader.get('gone|1'), undefined, 'an answer whose 30 s ran out 60 s ago is not taken');
  const few = new WriteThroughCache(100);
  t.equal(await few.warm(link, 1, 2000), 1, 'at most `max` answers');
  t.equal(ip(few.get('same|1')), '192.0.2.2', 'the newest first');
});

t.test('cache batches: what is encoded is decoded; a damaged message is refused', async (t) => {
  const answers = [Buffer.from('one answer'), Buffer.alloc(70_000, 7)];
  const msg = encodeBatch('node-1', ['k\x00\x01', 'other'], answers, [30, 86400]);
  const back = decodeBatch(msg);
  t.equal(back?.node, 'node-1');
  t.same(back?.entries.map((e) => [e.key, e.answer.length, e.ttl]), [['k\x00\x01', 10, 30], ['other', 70_000, 86400]]);
  t.equal(decodeBatch(msg.subarray(0, msg.length - 1)), null, 'a truncated batch is refused');
  t.equal(decodeBatch(Buffer.from([9, 1, 2])), null, 'a batch shorter than its name is refused');
  t.ok(isFrom(msg, 'node-1'), 'its writer is read from the name alone');
  t.notOk(isFrom(msg, 'node-2') || isFrom(msg, 'node-') || isFrom(msg, 'node-10'), 'another name, a prefix or a longer name is not its writer');
  t.notOk(isFrom(Buffer.from([9, 1, 2]), '\x01\x02') || isFrom(Buffer.alloc(0), ''), 'nor a damaged or empty message');
});
