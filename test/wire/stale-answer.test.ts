// Serve-stale (RFC 8767) on the wire: a cached answer past its TTL relayed with TTL 30 and
// EDE 3 (Stale Answer), in the stored OPT record or one of our own, the client's ID and exact
// question, TC when too large; and dig reading it.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import t from 'tap';
import { packAnswer, type PackedAnswer } from '../../src/wire/packed-answer.js';
import { parseQuery, Query } from '../../src/wire/query.js';
import { inspectResponse } from '../../src/wire/response.js';
import { EDE_STALE_ANSWER, relayStale, STALE_TTL, staleSeconds } from '../../src/wire/stale-answer.js';
import { buildQuery, decode, soa, T, type QueryOptions } from '../helpers/dns.js';
import { buildReply, type Reply, type UpstreamQuery } from '../helpers/upstream.js';

/** What the cache would hold: the upstream's answer to `name`, packed, stored `ageMs` ago. */
function stored(name: string, type: number, reply: Reply, ageMs: number, edns = true): { packed: PackedAnswer; wire: Buffer } {
  const msg = buildQuery(name, type, { id: 999, edns });
  const q: UpstreamQuery = {
    id: 999, rawName: name, name: name.toLowerCase(), type, class: 1, tcp: false, msg, udpSize: edns ? 1232 : 0, from: { address: '127.0.0.1', port: 1 },
  };
  const wire = buildReply(q, reply);
  const info = inspectResponse(wire, 12 + name.length + 2 + 4);
  if (info === null) throw new Error('inspectResponse refused the answer');
  return { packed: packAnswer(wire, info, Date.now() - ageMs), wire };
}

function clientQuery(name: string, type: number, o: QueryOptions): Query {
  const q = parseQuery(buildQuery(name, type, o));
  if (!(q instanceof Query)) throw new Error('not a query');
  return q;
}

t.test('a stale answer: TTL 30 everywhere, EDE 3 after the upstream\'s own EDNS options, the client\'s ID and case', async (t) => {
  const { packed, wire } = stored('www.example.org', T.A, {
    answers: [{ name: 'www.example.org', type: T.CNAME, ttl: 300, data: 'cdn.example.org' }, { name: 'cdn.example.org', type: T.A, ttl: 60, data: '192.0.2.8' }],
    authority: [{ name: 'example.org', type: T.NS, ttl: 86400, data: 'ns.example.org' }],
    opt: { options: [{ code: 65001, data: Buffer.from('upstream-option') }] },
  }, 3_600_000);
  const q = clientQuery('WWW.Example.ORG', T.A, { id: 4321, edns: true });
  const out = relayStale(q, packed, true);
  const d = decode(out);
  t.equal(d.id, 4321, 'the client\'s ID');
  t.equal(d.question?.name, 'WWW.Example.ORG', 'the client\'s exact question');
  t.equal(d.rcode, 0);
  t.same(d.answers.map((r) => r.ttl), [STALE_TTL, STALE_TTL], 'answer TTLs 30');
  t.same(d.authority.map((r) => r.ttl), [STALE_TTL], 'authority TTLs 30');
  t.equal(d.answers[1]?.text, '192.0.2.8', 'the records as stored');
  t.same(d.opt?.options.map((o) => o.code), [65001, 15], 'the upstream\'s option kept, EDE added');
  t.same([...d.opt!.options[1]!.data], [0, EDE_STALE_ANSWER], 'EDE INFO-CODE 3, no extra text');
  t.equal(out.length, wire.length + 6, '6 bytes larger than the stored answer, no more');
  t.equal(decode(wire).answers[0]?.ttl, 300, 'the stored answer itself is unchanged');
});

t.test('no OPT record in the stored answer: one of ours, with DO echoed; records in the additional section kept', async (t) => {
  const { packed } = stored('mail.example.org', T.MX, {
    answers: [{ name: 'mail.example.org', type: T.MX, ttl: 120, data: Buffer.concat([Buffer.from([0, 10]), Buffer.from('\x02mx\x07example\x03org\x00', 'latin1')]) }],
    additional: [{ name: 'mx.example.org', type: T.A, ttl: 120, data: '192.0.2.25' }],
  }, 200_000, true);
  const out = relayStale(clientQuery('mail.example.org', T.MX, { edns: true, dnssecOk: true, udpSize: 4096 }), packed, true);
  const d = decode(out);
  t.equal(d.additional.length, 1, 'the glue record');
  t.equal(d.additional[0]?.ttl, STALE_TTL);
  t.match(d.opt, { udpSize: 1232, dnssecOk: true, options: [{ code: 15 }] }, 'our OPT: 1232, DO, EDE');
  t.equal(out.readUInt16BE(10), 2, 'ARCOUNT counts it');
});

t.test('a client without EDNS gets TTL 30 and no OPT; NXDOMAIN stays NXDOMAIN; too large over UDP: TC', async (t) => {
  const plain = stored('old.example.org', T.A, { answers: [{ name: 'old.example.org', type: T.A, ttl: 5, data: '192.0.2.9' }] }, 60_000, false);
  const d = decode(relayStale(clientQuery('old.example.org', T.A, {}), plain.packed, true));
  t.equal(d.opt, null, 'no OPT for a client that sent none');
  t.equal(d.answers[0]?.ttl, STALE_TTL);

  const negative = stored('gone.example.org', T.A, { rcode: 3, authority: [soa('example.org', 900, 300)], opt: {} }, 1_000_000);
  const n = decode(relayStale(clientQuery('gone.example.org', T.A, { edns: true }), negative.packed, true));
  t.equal(n.rcode, 3, 'NXDOMAIN');
  t.equal(n.authority[0]?.ttl, STALE_TTL, 'SOA TTL 30');
  t.same(n.opt?.options.map((o) => o.code), [15], 'EDE 3');

  const many = Array.from({ length: 40 }, (_, i) => ({ name: 'big.example.org', type: T.A, ttl: 60, data: `192.0.2.${i}` }));
  const big = stored('big.example.org', T.A, { answers: many }, 120_000, false);
  const small = clientQuery('big.example.org', T.A, {});
  const truncated = decode(relayStale(small, big.packed, true));
  t.ok(truncated.tc, 'TC over UDP for a 512-byte client');
  t.equal(truncated.answers.length, 0, 'no partial records');
  t.equal(decode(relayStale(small, big.packed, false)).answers.length, 40, 'the whole answer over TCP');
});

t.test('staleSeconds: how long past its smallest TTL a stored answer is', async (t) => {
  const { packed } = stored('x.example.org', T.A, { answers: [{ name: 'x.example.org', type: T.A, ttl: 60, data: '192.0.2.1' }], authority: [soa('example.org', 300, 300)] }, 0);
  const at = Date.now();
  t.ok(Math.abs(staleSeconds(packed, at + 100_000) - 40) < 1, '100 s after storing a 60 s answer: 40 s stale');
  t.ok(staleSeconds(packed, at + 30_000) < 0, 'still fresh after 30 s');
});

t.test('dig reads the stale answer: TTL 30 and "EDE: 3 (Stale Answer)"', async (t) => {
  const { packed } = stored('stale.example.org', T.A, { answers: [{ name: 'stale.example.org', type: T.A, ttl: 300, data: '192.0.2.30' }], opt: {} }, 3_600_000);
  const server = createSocket('udp4');
  server.on('message', (msg, rinfo) => {
    const q = parseQuery(msg);
    if (q instanceof Query) server.send(relayStale(q, packed, true), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const result = await new Promise<{ stdout: string; error?: Error }>((resolve) => {
    const child = spawn('dig', ['@127.0.0.1', '-p', String(server.address().port), '+tries=1', '+time=3', 'stale.example.org', 'A'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('error', (error) => resolve({ stdout, error }));
    child.on('close', () => resolve({ stdout }));
  });
  if (result.error) {
    if (process.env.CI) t.fail(`dig is needed: ${result.error.message}`);
    else t.comment('skipped: dig not installed');
    return;
  }
  t.match(result.stdout, /EDE: 3 \(Stale Answer\)/, 'dig names the EDE');
  t.match(result.stdout, /^stale\.example\.org\.\s+30\s+IN\s+A\s+192\.0\.2\.30$/m, 'TTL 30');
});
