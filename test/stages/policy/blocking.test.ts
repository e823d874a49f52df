// Blocked names over real UDP/TCP sockets: every query type gets an answer, none reaches the
// upstream, subdomains are covered at label boundaries, case and trailing dots do not matter.
import dns2 from 'dns2';
import t from 'tap';
import { udpExchange } from '../../helpers/client.js';
import { buildQuery } from '../../helpers/dns.js';
import { ask } from '../../helpers/client.js';
import { T } from '../../helpers/dns.js';
import { startSinkhole } from '../../helpers/server.js';
import { startUpstream } from '../../helpers/upstream.js';

const LIST = `# MSN Messenger
messenger.hotmail.com
gateway.messenger.hotmail.com   # seed 001
`;

t.test('blocked names are answered from the rules and never forwarded', async (t) => {
  const upstream = await startUpstream(() => ({ answers: [{ name: 'x', type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  const s = await startSinkhole({ upstream: upstream.address, lists: { 'msn-messenger.txt': LIST } });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });

  const a = await ask(s.port, 'gateway.messenger.hotmail.com', T.A);
  t.equal(a.rcode, 0, 'A: NOERROR');
  t.same(a.answers.map((r) => [r.type, r.text, r.ttl]), [[T.A, '127.0.0.1', 10]], 'A: the IPv4 sinkhole with the blocked TTL');
  t.ok(a.qr && a.ra && a.rd, 'QR, RA set; RD echoed');

  const aaaa = await ask(s.port, 'gateway.messenger.hotmail.com', T.AAAA);
  t.same(aaaa.answers.map((r) => [r.type, r.text]), [[T.AAAA, '::1']], 'AAAA: the IPv6 sinkhole, not forwarded');

  for (const [label, type] of [['MX', T.MX], ['HTTPS', T.HTTPS], ['TXT', T.TXT], ['ANY', T.ANY], ['SVCB', T.SVCB]] as const) {
    const r = await ask(s.port, 'gateway.messenger.hotmail.com', type);
    t.equal(r.rcode, 0, `${label}: NOERROR`);
    t.equal(r.answers.length, 0, `${label}: no answer records`);
    t.same(r.authority.map((x) => [x.type, x.name]), [[T.SOA, 'gateway.messenger.hotmail.com']], `${label}: an SOA in authority`);
  }
  const sub = await ask(s.port, 'a.b.messenger.hotmail.com', T.MX);
  t.equal(sub.authority[0]?.name, 'messenger.hotmail.com', 'the SOA is owned by the blocked domain');

  const tcp = await ask(s.port, 'messenger.hotmail.com', T.A, { tcp: true });
  t.equal(tcp.answers[0]?.text, '127.0.0.1', 'blocked over TCP too');

  // A third-party parser (dns2) reads the hand-built answers the same way.
  for (const [type, field, value] of [[T.A, 'address', '127.0.0.1'], [T.AAAA, 'address', '::1']] as const) {
    const raw = await udpExchange(s.port, buildQuery('gateway.messenger.hotmail.com', type, { id: 77 }));
    const parsed = dns2.Packet.parse(raw!) as unknown as { header: { id: number; rcode: number }; answers: Record<string, unknown>[] };
    t.match(parsed, { header: { id: 77, rcode: 0 }, answers: [{ name: 'gateway.messenger.hotmail.com', type, ttl: 10, [field]: value }] },
      `dns2 parses the blocked ${type === T.A ? 'A' : 'AAAA'} answer`);
  }
  const soaRaw = await udpExchange(s.port, buildQuery('gateway.messenger.hotmail.com', T.MX, { id: 78, edns: true }));
  const soa = dns2.Packet.parse(soaRaw!) as unknown as { authorities: Record<string, unknown>[] };
  t.match(soa.authorities, [{ type: T.SOA, name: 'gateway.messenger.hotmail.com', primary: 'sinkhole.invalid', minimum: 10 }], 'and the SOA of a NODATA answer');

  t.equal(upstream.queries.length, 0, 'nothing was forwarded');
});

t.test('subdomains are blocked at label boundaries only', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }));
  const s = await startSinkhole({ upstream: upstream.address, lists: { 'msn-messenger.txt': LIST } });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  t.equal((await ask(s.port, 'x.y.messenger.hotmail.com', T.A)).answers[0]?.text, '127.0.0.1', 'a name below a rule is blocked');
  t.equal((await ask(s.port, 'notmessenger.hotmail.com', T.A)).answers[0]?.text, '192.0.2.7', 'notmessenger.hotmail.com is not below messenger.hotmail.com');
  t.equal((await ask(s.port, 'hotmail.com', T.A)).answers[0]?.text, '192.0.2.7', 'the parent domain is not blocked');
  t.equal((await ask(s.port, 'messenger.hotmail.com.evil.example', T.A)).answers[0]?.text, '192.0.2.7', 'a rule is a suffix, not a prefix');
  t.same(upstream.queries.map((q) => q.name), ['notmessenger.hotmail.com', 'hotmail.com', 'messenger.hotmail.com.evil.example']);
});

t.test('case and trailing dots do not matter; the client\'s case comes back', async (t) => {
  const upstream = await startUpstream(() => ({ rcode: 3 }));
  const s = await startSinkhole({ upstream: upstream.address, lists: { 'a.txt': 'GATEWAY.Messenger.HOTMAIL.com.\n' } });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  const r = await ask(s.port, 'GaTeWaY.mEsSeNgEr.HoTmAiL.cOm', T.A);
  t.equal(r.answers[0]?.text, '127.0.0.1', 'mixed-case query blocked by a mixed-case rule with a trailing dot');
  t.equal(r.question?.name, 'GaTeWaY.mEsSeNgEr.HoTmAiL.cOm', 'question echoed byte for byte');
  t.equal(r.answers[0]?.name, 'GaTeWaY.mEsSeNgEr.HoTmAiL.cOm', 'answer owner points at the question');
});

t.test('every list format is understood; junk lines are skipped with file:line', async (t) => {
  const upstream = await startUpstream(() => ({ rcode: 3 }));
  const lists = {
    'formats.txt': [
      '# comment line',
      '! adblock comment line',
      '',
      'plain.example',
      '  \tindented.example\t# trailing comment',
      '0.0.0.0 hosts-a.example hosts-b.example',
      '127.0.0.1 hosts-c.example',
      ':: hosts-v6.example',
      '*.wild.example',
      '||adblock.example^',
      'crlf.example\r',
      'bücher.example',
      'not a rule at all',
      'bad..dots.example',
      '||modifier.example^$important',
      '127.0.0.1 localhost',
      '192.0.2.1',
      'after-junk.example ! adblock-style trailing comment',
    ].join('\n'),
  };
  const s = await startSinkhole({ upstream: upstream.address, lists });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  for (const name of ['plain.example', 'indented.example', 'hosts-a.example', 'hosts-b.example', 'hosts-c.example',
    'hosts-v6.example', 'wild.example', 'x.wild.example', 'adblock.example', 'sub.adblock.example', 'crlf.example',
    'xn--bcher-kva.example', 'after-junk.example']) {
    t.equal((await ask(s.port, name, T.A)).answers[0]?.text, '127.0.0.1', `${name} is blocked`);
  }
  t.equal((await ask(s.port, 'localhost', T.A)).rcode, 3, 'hosts-file preamble names are not turned into rules');
  const warnings = s.logs.filter((l) => l.msg?.toString().startsWith('invalid rule skipped'));
  const where = warnings.map((w) => w.where);
  t.same(where, [`${s.dir}/formats.txt:13`, `${s.dir}/formats.txt:14`, `${s.dir}/formats.txt:15`, `${s.dir}/formats.txt:17`],
    'each junk line is named by file:line');
  t.match(warnings[0], { text: 'not a rule at all' }, 'the warning quotes the line');
  t.match(warnings[3], { reason: /ip:192\.0\.2\.1/ }, 'a bare address suggests the ip: rule');
  const loaded = s.logs.find((l) => l.msg?.toString().startsWith('loaded '));
  t.match(loaded, { rules: 11, files: [{ rules: 11, invalid: 4 }] }, 'startup logs how many rules came from which file');
  t.type(loaded?.ms, 'number', 'and how long it took');
});

t.test('a blocked query is logged with client, name, type and the rule (file:line), repeats folded', async (t) => {
  const upstream = await startUpstream(() => ({ rcode: 3 }));
  const s = await startSinkhole({ upstream: upstream.address, lists: { 'msn-messenger.txt': LIST } });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  for (let i = 0; i < 5; i++) await ask(s.port, 'gateway.messenger.hotmail.com', T.A);
  const lines = s.logs.filter((l) => l.msg === 'blocked');
  t.equal(lines.length, 1, 'five identical blocked queries: one line now');
  t.match(lines[0], {
    client: '127.0.0.1', qname: 'gateway.messenger.hotmail.com', qtype: 'A',
    rule: `${s.dir}/msn-messenger.txt:3`, bundle: 'msn-messenger',
  });
  await new Promise((r) => setTimeout(r, 1200));
  t.match(s.logs.filter((l) => l.msg === 'blocked (repeated)'), [{ qname: 'gateway.messenger.hotmail.com', repeats: 4 }],
    'and one line with the count at the end of the interval');
});
