// /api/stats counts the DoH canary (browsers and `sinkhole wait-ready` asking whether DoH is
// allowed) apart: it is no client's blocked attempt, so it is not in the top lists, the
// latest attempts or the chart; and the top names are the names asked, not the rules.
import t from 'tap';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, serverWithUpstream } from '../helpers/server.js';
import { CANARY_DOMAIN } from '../../src/stages/guard/canary.js';

t.test('the canary apart; top names as asked', async (t) => {
  const adminPort = await freePort();
  const { s } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }),
    lists: { 'msn-messenger.txt': 'messenger.hotmail.com\n' },
    args: ['--admin', `127.0.0.1:${adminPort}`],
  });
  for (let i = 0; i < 3; i++) await ask(s.port, CANARY_DOMAIN, T.A, { from: '127.0.0.3' });
  await ask(s.port, 'gateway.messenger.hotmail.com', T.A, { from: '127.0.0.2' });
  await ask(s.port, 'login.messenger.hotmail.com', T.A, { from: '127.0.0.2' });
  const stats = await (await fetch(`http://127.0.0.1:${adminPort}/api/stats`)).json() as Record<string, unknown>;
  t.equal(stats.blocked, 5, 'the verdict counter still counts every blocked answer');
  t.equal(stats.canaryAnswers, 3, 'the canary answers, apart');
  t.same(stats.topBlockedClients, [{ key: '127.0.0.2', count: 2 }], 'the canary\'s asker is not a blocked client');
  t.same(stats.topBlockedBundles, [{ key: 'msn-messenger', count: 2 }], 'no "canary" bundle');
  t.same((stats.topBlockedDomains as { key: string }[]).map((d) => d.key).sort(), ['gateway.messenger.hotmail.com', 'login.messenger.hotmail.com'], 'the names asked, not the rule');
  t.equal((stats.recentBlocked as unknown[]).length, 2);
  t.equal((stats.last24h as { blocked: number }[]).reduce((n, h) => n + h.blocked, 0), 2, 'the chart counts attempts only');
});
