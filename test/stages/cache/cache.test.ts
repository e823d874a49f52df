// The answer cache over real sockets: hits served with aged TTLs, negative answers cached for
// the SOA's negative TTL, SERVFAIL briefly, one upstream query for identical questions in
// flight, and rules checked before the cache.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ask } from '../../helpers/client.js';
import { soa, T } from '../../helpers/dns.js';
import { serverWithUpstream } from '../../helpers/server.js';
import type { Handler } from '../../helpers/upstream.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const setup = (t: Test, handler: Handler, args: string[] = [], lists: Record<string, string> = {}) => serverWithUpstream(t, { handler, args, lists });

t.test('a cache hit is served with the remaining TTL, without asking upstream', async (t) => {
  const { s, upstream } = await setup(t, (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  const first = await ask(s.port, 'cached.example.org', T.A, { id: 1 });
  t.equal(first.answers[0]?.ttl, 300, 'first answer: the upstream\'s TTL');
  await sleep(2100);
  const second = await ask(s.port, 'CACHED.example.org', T.A, { id: 2 });
  t.equal(upstream.queries.length, 1, 'the second query was not forwarded');
  t.ok(second.answers[0]!.ttl <= 298 && second.answers[0]!.ttl >= 297, `TTL aged by the time in cache (${second.answers[0]?.ttl})`);
  t.equal(second.id, 2, 'with the second client\'s ID');
  t.equal(second.question?.name, 'CACHED.example.org', 'and its question case');
  t.equal(second.answers[0]?.text, '192.0.2.7');
});

t.test('NXDOMAIN and NODATA are cached for the SOA negative TTL; without an SOA they are not', async (t) => {
  const { s, upstream } = await setup(t, (q) => {
    if (q.name.startsWith('nx-nosoa')) return { rcode: 3 };
    if (q.name.startsWith('nx')) return { rcode: 3, authority: [soa('example.org', 3600, 60)] };
    return { authority: [soa('example.org', 30, 900)] }; // NODATA: min(SOA TTL 30, MINIMUM 900) = 30
  });
  const nx = await ask(s.port, 'nx.example.org', T.A);
  t.equal(nx.rcode, 3);
  const nx2 = await ask(s.port, 'nx.example.org', T.A);
  t.equal(nx2.rcode, 3, 'NXDOMAIN again');
  t.equal(nx2.authority[0]?.type, T.SOA, 'with the SOA');
  const nodata = await ask(s.port, 'nodata.example.org', T.AAAA);
  const nodata2 = await ask(s.port, 'nodata.example.org', T.AAAA);
  t.equal(nodata2.rcode, 0);
  t.equal(nodata2.answers.length, 0, 'NODATA again');
  t.equal(nodata.authority[0]?.ttl, 30);
  await ask(s.port, 'nx-nosoa.example.org', T.A);
  await ask(s.port, 'nx-nosoa.example.org', T.A);
  t.same(upstream.queries.map((q) => q.name), ['nx.example.org', 'nodata.example.org', 'nx-nosoa.example.org', 'nx-nosoa.example.org'],
    'cached negatives were not forwarded again; the SOA-less NXDOMAIN was');
});

t.test('SERVFAIL from every upstream is cached for a few seconds at most', async (t) => {
  const { s, upstream } = await setup(t, () => ({ rcode: 2 }), ['--servfail-ttl', '1']);
  t.equal((await ask(s.port, 'broken.example.org', T.A)).rcode, 2);
  const afterFirst = upstream.queries.length;
  t.equal((await ask(s.port, 'broken.example.org', T.A)).rcode, 2, 'SERVFAIL from the cache');
  t.equal(upstream.queries.length, afterFirst, 'not forwarded again at once');
  await sleep(1200);
  await ask(s.port, 'broken.example.org', T.A);
  t.ok(upstream.queries.length > afterFirst, 'asked again once the SERVFAIL expired');
});

t.test('identical questions in flight at once cause one upstream query', async (t) => {
  const { s, upstream } = await setup(t, (q) => ({ delayMs: 300, answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.8' }] }));
  const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => ask(s.port, 'popular.example.org', T.A, { id: 500 + i })));
  t.equal(upstream.queries.length, 1, 'six clients, one upstream query');
  t.same(replies.map((r) => r.id), [500, 501, 502, 503, 504, 505], 'each client gets its own ID back');
  t.ok(replies.every((r) => r.answers[0]?.text === '192.0.2.8'));
});

t.test('the cache key is (name, type, class, EDNS/DO)', async (t) => {
  const { s, upstream } = await setup(t, (q) => ({ answers: q.type === T.A ? [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.8' }] : [] }));
  await ask(s.port, 'k.example.org', T.A);
  await ask(s.port, 'k.example.org', T.AAAA);
  await ask(s.port, 'k.example.org', T.A, { edns: true, dnssecOk: true });
  await ask(s.port, 'k.example.org', T.A, { qclass: 3 });
  await ask(s.port, 'k.example.org', T.A, { edns: true, dnssecOk: true });
  await ask(s.port, 'k.example.org', T.A);
  t.equal(upstream.queries.length, 4, 'A, AAAA, A+DO and class CH each asked once');
  t.equal(upstream.queries.filter((q) => q.udpSize > 0).length, 1, 'only the DO query carried EDNS upstream');
});

t.test('TTLs are clamped to the configured minimum and maximum', async (t) => {
  const { s } = await setup(t, (q) => ({
    answers: [{ name: q.rawName, type: T.A, ttl: q.name.startsWith('long') ? 999999 : 1, data: '192.0.2.8' }],
  }), ['--cache-min-ttl', '30', '--cache-max-ttl', '600']);
  t.equal((await ask(s.port, 'long.example.org', T.A)).answers[0]?.ttl, 600, 'capped at the maximum');
  t.equal((await ask(s.port, 'short.example.org', T.A)).answers[0]?.ttl, 30, 'raised to the minimum');
});

t.test('rules are checked before the cache: a cached name that becomes blocked is blocked at once', async (t) => {
  const { s, upstream } = await setup(t, (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 3600, data: '192.0.2.9' }] }), [],
    { 'chat.txt': '# nothing yet\n' });
  t.equal((await ask(s.port, 'newchat.example', T.A)).answers[0]?.text, '192.0.2.9', 'cached while allowed');
  writeFileSync(join(s.dir, 'chat.txt'), 'newchat.example\n');
  await s.server.reload('test');
  t.equal((await ask(s.port, 'newchat.example', T.A)).answers[0]?.text, '127.0.0.1', 'blocked right after the reload');
  t.equal(upstream.queries.length, 1);
  writeFileSync(join(s.dir, 'chat.txt'), '# unblocked again\n');
  await s.server.reload('test');
  t.equal((await ask(s.port, 'newchat.example', T.A)).answers[0]?.text, '192.0.2.9', 'unblocked: served from the cache that survived both reloads');
  t.equal(upstream.queries.length, 1);
});

t.test('an answer whose CNAME chain passes through a blocked name is blocked, also from the cache', async (t) => {
  const { s } = await setup(t, (q) => ({
    answers: [
      { name: q.rawName, type: T.CNAME, ttl: 300, data: 'edge.gateway.messenger.hotmail.com' },
      { name: 'edge.gateway.messenger.hotmail.com', type: T.A, ttl: 300, data: '192.0.2.10' },
    ],
  }), [], { 'msn.txt': 'gateway.messenger.hotmail.com\n' });
  const first = await ask(s.port, 'innocent-looking.example.org', T.A);
  t.same(first.answers.map((r) => r.text), ['127.0.0.1'], 'answered as blocked, not with the real address');
  const again = await ask(s.port, 'innocent-looking.example.org', T.A);
  t.same(again.answers.map((r) => r.text), ['127.0.0.1'], 'also when the answer comes from the cache');
  const aaaa = await ask(s.port, 'innocent-looking.example.org', T.AAAA);
  t.same(aaaa.answers.map((r) => r.text), ['::1'], 'AAAA gets the IPv6 sinkhole');
});
