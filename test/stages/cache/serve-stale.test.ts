// Serve-stale (RFC 8767) through the real server: when the upstream stops answering, a name
// the cache knew is answered from its expired entry (TTL 30, EDE 3) instead of SERVFAIL.
import t from 'tap';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { startSinkhole } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

async function setup(t: { teardown(fn: () => unknown): void }, args: string[]) {
  let down = false;
  const upstream = await startUpstream((q) => (down ? { drop: true } : { answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.44' }] }));
  const s = await startSinkhole({ upstream: upstream.address, args: ['--upstream-timeout', '100', ...args] });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  return { s, upstream, goDown: () => (down = true) };
}

t.test('the upstream goes down: the expired answer, with TTL 30 and EDE 3', async (t) => {
  const { s, upstream, goDown } = await setup(t, []);
  t.equal((await ask(s.port, 'known.example.org', T.A, { edns: true })).answers[0]?.text, '192.0.2.44', 'answered fresh');
  await new Promise((r) => setTimeout(r, 1200));
  goDown();
  const before = upstream.queries.length;
  const r = await ask(s.port, 'known.example.org', T.A, { edns: true });
  t.equal(r.rcode, 0, 'NOERROR, not SERVFAIL');
  t.equal(r.answers[0]?.text, '192.0.2.44', 'the answer the cache knew');
  t.equal(r.answers[0]?.ttl, 30, 'TTL 30 (RFC 8767)');
  t.equal(r.opt?.options.find((o) => o.code === 15)?.data.readUInt16BE(0), 3, 'EDE 3: Stale Answer');
  t.ok(upstream.queries.length > before, 'the refresh was tried first');
  t.equal((await ask(s.port, 'unknown.example.org', T.A)).rcode, 2, 'a name the cache never knew: SERVFAIL');
  const again = await ask(s.port, 'known.example.org', T.A, { edns: true });
  t.equal(again.answers[0]?.text, '192.0.2.44', 'still stale, not the SERVFAIL cached in between');
});

t.test('the upstream answers again: fresh answers replace the stale one', async (t) => {
  let down = false;
  const upstream = await startUpstream((q) => (down ? { drop: true } : { answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.45' }] }));
  const s = await startSinkhole({ upstream: upstream.address, args: ['--upstream-timeout', '100'] });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  await ask(s.port, 'back.example.org', T.A);
  await new Promise((r) => setTimeout(r, 1200));
  const fresh = await ask(s.port, 'back.example.org', T.A);
  t.equal(fresh.answers[0]?.ttl, 1, 'an expired entry with a live upstream is refreshed, not served stale');
  down = true;
});

t.test('--stale-max-age 0: no stale answers', async (t) => {
  const { s, goDown } = await setup(t, ['--stale-max-age', '0']);
  await ask(s.port, 'known.example.org', T.A);
  await new Promise((r) => setTimeout(r, 1200));
  goDown();
  t.equal((await ask(s.port, 'known.example.org', T.A)).rcode, 2, 'SERVFAIL');
});
