// The admin HTTP API over real sockets: health, Prometheus metrics moving with queries,
// reload, check, stats, bearer tokens, and the loopback-only default.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildConfig } from '../../src/config/config.js';
import { ask } from '../helpers/client.js';
import { T } from '../helpers/dns.js';
import { freePort, startSinkhole } from '../helpers/server.js';
import { startUpstream, type Handler } from '../helpers/upstream.js';

const answer: Handler = (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] });

async function setup(t: Tap, opts: { handler?: Handler; token?: string; lists?: Record<string, string> } = {}) {
  const upstream = await startUpstream(opts.handler ?? answer);
  const adminPort = await freePort();
  const s = await startSinkhole({
    upstream: upstream.address, lists: opts.lists ?? { 'msn-messenger.txt': 'messenger.hotmail.com\n' },
    args: ['--admin', `127.0.0.1:${adminPort}`, '--upstream-timeout', '200', ...(opts.token ? ['--admin-token', opts.token] : [])],
  });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  const http = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${adminPort}${path}`, init);
  return { s, upstream, http };
}
type Tap = { teardown(fn: () => unknown): void };

t.test('health: 200 when rules are loaded and an upstream answers; 503 with the reason otherwise', async (t) => {
  const { http } = await setup(t);
  const ok = await http('/healthz');
  t.equal(ok.status, 200);
  t.match(await ok.json(), { status: 'ok', rules: 1, files: 1, upstreams: [{ lastAnswerSecondsAgo: 0 }] }, 'the probe made the upstream answer');

  const dead = await setup(t, { handler: () => ({ drop: true }) });
  const fail = await dead.http('/healthz');
  t.equal(fail.status, 503);
  t.match(await fail.json(), { status: 'fail', reason: /no upstream answered: (.* did not answer|no answer within 1000 ms)/ });

  const empty = await setup(t, { lists: {} });
  const none = await empty.http('/healthz');
  t.equal(none.status, 503);
  t.match(await none.json(), { reason: /no blocklists loaded/ });
});

t.test('metrics move as queries are sent', async (t) => {
  const { s, http } = await setup(t);
  const value = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const before = await (await http('/metrics')).text();
  t.match(before, /# TYPE sinkhole_queries_total counter/);
  await ask(s.port, 'messenger.hotmail.com', T.A);
  await ask(s.port, 'x.messenger.hotmail.com', T.AAAA);
  await ask(s.port, 'www.example.org', T.A);
  await ask(s.port, 'www.example.org', T.A);
  const after = await (await http('/metrics')).text();
  t.equal(value(after, 'sinkhole_queries_total{verdict="blocked"}') - value(before, 'sinkhole_queries_total{verdict="blocked"}'), 2, 'blocked');
  t.equal(value(after, 'sinkhole_queries_total{verdict="forwarded"}'), 1, 'forwarded');
  t.equal(value(after, 'sinkhole_queries_total{verdict="cached"}'), 1, 'cached');
  t.equal(value(after, 'sinkhole_queries_by_type_total{qtype="AAAA"}'), 1, 'by type');
  t.ok(value(after, 'sinkhole_responses_by_rcode_total{rcode="NOERROR"}') >= 4, 'by rcode');
  t.equal(value(after, 'sinkhole_cache_hits_total'), 1);
  t.equal(value(after, 'sinkhole_cache_entries'), 1);
  t.match(after, /^sinkhole_upstream_queries_total\{upstream="127\.0\.0\.1:\d+"\} [1-9]/m, 'upstream queries');
  t.match(after, /^sinkhole_upstream_latency_seconds_bucket\{upstream="127\.0\.0\.1:\d+",le="\+Inf"\} [1-9]/m, 'upstream latency histogram');
  t.match(after, new RegExp(`^sinkhole_rules\\{file="${s.dir}/msn-messenger\\.txt",bundle="msn-messenger"\\} 1$`, 'm'), 'rules per file');
  t.match(after, /^sinkhole_packets_dropped_total\{reason="malformed"\} 0$/m);
});

t.test('reload, check and stats', async (t) => {
  const { s, http } = await setup(t);
  writeFileSync(join(s.dir, 'chat.txt'), 'newchat.example\n');
  const reload = await http('/reload', { method: 'POST' });
  t.equal(reload.status, 200);
  t.match(await reload.json(), { reloaded: true, rules: 2 });
  t.match(await (await http('/metrics')).text(), /^sinkhole_reloads_total [1-9]/m, 'reloads counted');
  const check = await http('/api/check?name=www.newchat.example&type=AAAA');
  t.match(await check.json(), { verdict: 'blocked', answer: '::1', decidedBy: { rule: 'newchat.example', bundle: 'chat' } }, 'the same verdict as sinkhole check');
  t.equal((await http('/api/check')).status, 400);
  await ask(s.port, 'messenger.hotmail.com', T.A);
  t.match(await (await http('/api/stats')).json(), { queries: 1, blocked: 1, blockedShare: 1, rules: 2 });
  t.equal((await http('/nope')).status, 404);
});

t.test('a token is required on every request when set', async (t) => {
  const { http } = await setup(t, { token: 's3cret' });
  t.equal((await http('/api/stats')).status, 401, 'no token');
  t.equal((await http('/api/stats', { headers: { authorization: 'Bearer wrong!' } })).status, 401, 'wrong token');
  t.equal((await http('/api/stats', { headers: { authorization: 'Bearer s3cret' } })).status, 200, 'the token');
});

t.test('the admin API stays on loopback unless a token is set', async (t) => {
  t.throws(() => buildConfig(['--upstream', '192.0.2.1', '--admin', '0.0.0.0:8053']), /would be reachable from the network; add --admin-token TOKEN or listen on 127\.0\.0\.1/);
  t.match(buildConfig(['--upstream', '192.0.2.1', '--admin', '0.0.0.0:8053', '--admin-token', 'x']), { admin: { host: '0.0.0.0' }, adminToken: 'x' });
  t.match(buildConfig(['--upstream', '192.0.2.1']), { admin: null }, 'off by default');
});
