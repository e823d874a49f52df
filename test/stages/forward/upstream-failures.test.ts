// What a client sees when upstreams refuse or fail, and what the log says during an outage.
import t from 'tap';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { startSinkhole } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

t.test('an upstream REFUSED or NOTIMP moves on, and is never relayed as our own refusal', async (t) => {
  const refusing = await startUpstream(() => ({ rcode: 5 }));
  const notimp = await startUpstream(() => ({ rcode: 4 }));
  const good = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  const mixed = await startSinkhole({ upstream: [refusing.address, good.address] });
  const bad = await startSinkhole({ upstream: [refusing.address, notimp.address] });
  t.teardown(async () => {
    await mixed.close();
    await bad.close();
    await Promise.all([refusing.close(), notimp.close(), good.close()]);
  });
  t.equal((await ask(mixed.port, 'www.example.org', T.A)).answers[0]?.text, '192.0.2.1', 'the next upstream answers');
  const r = await ask(bad.port, 'www.example.org', T.A, { edns: true });
  t.equal(r.rcode, 2, 'SERVFAIL, not REFUSED: REFUSED from this server means "not in allow-net"');
  t.match(r.opt?.options[0]?.data.subarray(2).toString(), /answered (REFUSED|NOTIMP)/, 'the EDE says what the upstream answered');
});

t.test('an outage writes one warning per kind of failure per second, not one per query', async (t) => {
  const dead = await startUpstream(() => ({ rcode: 2 }));
  const s = await startSinkhole({ upstream: dead.address, args: ['--servfail-ttl', '0'] });
  t.teardown(async () => {
    await s.close();
    await dead.close();
  });
  await Promise.all(Array.from({ length: 50 }, (_, i) => ask(s.port, `n${i}.example.org`, T.A)));
  await new Promise((r) => setTimeout(r, 1300));
  const lines = s.logs.filter((l) => String(l.msg).startsWith('upstream failure'));
  t.equal(lines.filter((l) => l.msg === 'upstream failure').length, 1, 'one line with the first failed query');
  t.match(lines.find((l) => l.msg === 'upstream failure (repeated)'), { count: 49, seconds: 1, reason: /answered SERVFAIL/ }, 'then the count');
});
