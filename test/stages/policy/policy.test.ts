// Policy over real sockets: exceptions and specificity, exempt clients, who may ask, answer-IP
// rules (A, AAAA, HTTPS hints), the DoH canary, Extended DNS Errors naming the rule.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ask, udpExchange } from '../../helpers/client.js';
import { buildQuery, decode, encodeName, ipv4, T } from '../../helpers/dns.js';
import { serverWithUpstream } from '../../helpers/server.js';
import type { Handler } from '../../helpers/upstream.js';

const real: Handler = (q) => ({
  answers: q.type === T.AAAA ? [{ name: q.rawName, type: T.AAAA, ttl: 300, data: '2001:db8::7' }]
    : [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }],
});

const setup = (t: Test, lists: Record<string, string>, args: string[] = [], handler: Handler = real) => serverWithUpstream(t, { handler, args, lists });

t.test('exceptions: the most specific rule wins; on equal specificity allow wins', async (t) => {
  const { s } = await setup(t, {
    'msn.txt': 'live.example\n@@||login.live.example^\nchat.example\nx.chat.example\n',
    'office.allow.txt': '# allow file: plain lines are exceptions\nchat.example\n',
  });
  const a = (name: string) => ask(s.port, name, T.A).then((r) => r.answers[0]?.text);
  t.equal(await a('messenger.live.example'), '127.0.0.1', 'block rule covers subdomains');
  t.equal(await a('login.live.example'), '192.0.2.7', 'a more specific allow rule beats the block rule');
  t.equal(await a('a.login.live.example'), '192.0.2.7', 'and covers names below it');
  t.equal(await a('chat.example'), '192.0.2.7', 'allow (in an .allow.txt file) and block on the same name: allow wins');
  t.equal(await a('x.chat.example'), '127.0.0.1', 'a more specific block rule beats the allow rule above it');
});

t.test('exempt clients by IPv4 and IPv6 CIDR are never blocked', async (t) => {
  const { freePort } = await import('../../helpers/server.js');
  const v6port = await freePort();
  const { s } = await setup(t, { 'msn.txt': 'messenger.hotmail.com\n' }, ['--exempt-client', '127.0.0.2/32', '--exempt-client', '::1/128', '--listen', `[::1]:${v6port}`]);
  t.equal((await ask(s.port, 'messenger.hotmail.com', T.A, { from: '127.0.0.1' })).answers[0]?.text, '127.0.0.1', '127.0.0.1 is blocked');
  t.equal((await ask(s.port, 'messenger.hotmail.com', T.A, { from: '127.0.0.2' })).answers[0]?.text, '192.0.2.7', '127.0.0.2 is exempt');
  t.equal((await ask(v6port, 'messenger.hotmail.com', T.AAAA, { host: '::1' })).answers[0]?.text, '2001:db8::7', '::1 is exempt');
});

t.test('who may ask: clients outside allow-net get REFUSED', async (t) => {
  const { s, upstream } = await setup(t, {}, ['--allow-net', '127.0.0.2/32', '--allow-net', '10.0.0.0/8']);
  // A query with an EDNS cookie (as dig sends): REFUSED with EDE 18, no larger than the query.
  const cookie = { code: 10, data: Buffer.alloc(8, 7) };
  const query = buildQuery('www.example.org', T.A, { edns: true, options: [cookie] });
  const raw = (await udpExchange(s.port, query, 3000, '127.0.0.1', '127.0.0.1'))!;
  const refused = decode(raw);
  t.equal(refused.rcode, 5, 'REFUSED');
  t.equal(refused.opt?.options[0]?.data.readUInt16BE(0), 18, 'EDE 18 (Prohibited)');
  t.ok(raw.length <= query.length, `the refusal (${raw.length} bytes) is no larger than the query (${query.length})`);
  // A bare EDNS query leaves no room for the EDE: REFUSED alone, still no larger.
  const bare = buildQuery('www.example.org', T.A, { edns: true });
  const rawBare = (await udpExchange(s.port, bare, 3000, '127.0.0.1', '127.0.0.1'))!;
  t.equal(decode(rawBare).rcode, 5);
  t.ok(rawBare.length <= bare.length, `bare EDNS: ${rawBare.length} <= ${bare.length} bytes`);
  t.equal(upstream.queries.length, 0, 'nothing forwarded for a stranger');
  t.equal((await ask(s.port, 'www.example.org', T.A, { from: '127.0.0.2' })).answers[0]?.text, '192.0.2.7', 'an allowed client is answered');
});

t.test('the default allow-net answers loopback and private networks only', async (t) => {
  const { s } = await setup(t, {});
  t.same(s.config.allowNets?.map((c) => c.text), ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '::1/128', 'fc00::/7', 'fe80::/10']);
  const { NetworkList } = await import('../../../src/stages/policy/cidr.js');
  const nets = new NetworkList(s.config.allowNets!);
  for (const ok of ['127.0.0.1', '10.1.2.3', '172.31.0.1', '192.168.1.16', '100.64.0.1', '169.254.1.1', '::1', 'fd12::1', 'fe80::1', '::ffff:192.168.1.2']) t.ok(nets.contains(ok), `${ok} may ask`);
  for (const no of ['8.8.8.8', '172.32.0.1', '192.0.2.1', '2001:db8::1', '::ffff:8.8.8.8']) t.notOk(nets.contains(no), `${no} may not`);
  t.equal((await ask(s.port, 'www.example.org', T.A)).rcode, 0, 'loopback is answered');
});

t.test('answer-IP rules block forwarded answers with addresses in the range: A, AAAA and HTTPS hints', async (t) => {
  const httpsRdata = (hint: string) => {
    const key = Buffer.from([0, 4, 0, 4]);
    return Buffer.concat([Buffer.from([0, 1]), encodeName('.'), Buffer.from([0, 1, 0, 3, 2, 0x68, 0x32]), key, ipv4(hint)]);
  };
  const { s } = await setup(t, { 'aim-icq.txt': '# AIM/ICQ servers\nip:64.12.24.0/22   # seed 001\nip:2001:db8:bad::/48\n' }, [], (q) => {
    if (q.type === T.HTTPS) return { answers: [{ name: q.rawName, type: T.HTTPS, ttl: 300, data: httpsRdata(q.name.startsWith('hint') ? '64.12.25.9' : '192.0.2.9') }] };
    if (q.type === T.AAAA) return { answers: [{ name: q.rawName, type: T.AAAA, ttl: 300, data: q.name.startsWith('v6bad') ? '2001:db8:bad::1' : '2001:db8::1' }] };
    return { answers: [{ name: q.rawName, type: T.A, ttl: 300, data: q.name.startsWith('oscar') ? '64.12.25.20' : '192.0.2.20' }] };
  });
  const oscar = await ask(s.port, 'oscar.example.net', T.A, { edns: true });
  t.same(oscar.answers.map((r) => r.text), ['127.0.0.1'], 'A in 64.12.24.0/22: sinkholed');
  t.match(oscar.opt?.options[0]?.data.subarray(2).toString(), /ip:64\.12\.24\.0\/22 \(.*aim-icq\.txt:2, bundle aim-icq\)/, 'EDE names the ip: rule');
  t.same((await ask(s.port, 'v6bad.example.net', T.AAAA)).answers.map((r) => r.text), ['::1'], 'AAAA in the IPv6 range: sinkholed');
  t.same((await ask(s.port, 'fine.example.net', T.A)).answers.map((r) => r.text), ['192.0.2.20'], 'other addresses pass');
  const hint = await ask(s.port, 'hint.example.net', T.HTTPS);
  t.equal(hint.answers.length, 0, 'HTTPS answer with an ipv4hint in the range: nothing');
  t.equal(hint.authority[0]?.type, T.SOA, 'NODATA with an SOA');
  t.equal((await ask(s.port, 'clean.example.net', T.HTTPS)).answers.length, 1, 'HTTPS with other hints passes');
  t.match(s.logs.find((l) => l.msg === 'blocked' && l.qname === 'oscar.example.net'), { rule: /aim-icq\.txt:2$/, bundle: 'aim-icq' });
});

t.test('a CNAME answer cached first is blocked once its target becomes blocked', async (t) => {
  const { s, upstream } = await setup(t, { 'chat.txt': '# empty at first\n' }, [], (q) => ({
    answers: [
      { name: q.rawName, type: T.CNAME, ttl: 3600, data: 'edge.newchat.example' },
      { name: 'edge.newchat.example', type: T.A, ttl: 3600, data: '192.0.2.33' },
    ],
  }));
  t.same((await ask(s.port, 'alias.example.org', T.A)).answers.map((r) => r.text), ['edge.newchat.example', '192.0.2.33'], 'cached while allowed (CNAME + A)');
  writeFileSync(join(s.dir, 'chat.txt'), 'newchat.example\n');
  await s.server.reload('test');
  t.same((await ask(s.port, 'alias.example.org', T.A)).answers.map((r) => r.text), ['127.0.0.1'], 'the cached chain now passes a blocked name');
  t.equal(upstream.queries.length, 1, 'answered from the cache, never with the real address');
});

t.test('the DoH canary use-application-dns.net gets NXDOMAIN and is never forwarded', async (t) => {
  const { s, upstream } = await setup(t, {});
  t.equal((await ask(s.port, 'use-application-dns.net', T.A)).rcode, 3);
  t.equal((await ask(s.port, 'USE-APPLICATION-DNS.NET.', T.AAAA)).rcode, 3);
  t.equal(upstream.queries.length, 0);
});

t.test('a blocked answer to an EDNS query carries EDE 15 with the rule, file and line', async (t) => {
  const { s } = await setup(t, { 'yahoo-messenger.txt': '# Yahoo\n\nscs.msg.yahoo.com  # seed 003\n' });
  const r = await ask(s.port, 'scs.msg.yahoo.com', T.A, { edns: true });
  const ede = r.opt?.options.find((o) => o.code === 15);
  t.equal(ede?.data.readUInt16BE(0), 15, 'info-code 15: Blocked');
  t.equal(ede?.data.subarray(2).toString(), `blocked by scs.msg.yahoo.com (${s.dir}/yahoo-messenger.txt:3, bundle yahoo-messenger)`);
  const plain = await ask(s.port, 'scs.msg.yahoo.com', T.A);
  t.equal(plain.opt, null, 'no OPT record for a client that sent none');
  t.equal(plain.additional.length, 0);
});
