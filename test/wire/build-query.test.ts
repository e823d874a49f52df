// buildQuery (src/wire/build-query.ts, dns2 underneath): the bytes it makes, read back by
// the test-side decoder (written independently of src/wire) and by the server's own
// parser, and sent to a running server that answers them.
import t from 'tap';
import { buildQuery } from '../../src/wire/build-query.js';
import { parseQuery, Query } from '../../src/wire/query.js';
import { udpExchange } from '../helpers/client.js';
import { decode, T } from '../helpers/dns.js';
import { serverWithUpstream } from '../helpers/server.js';

t.test('a standard query: header, one question, class IN, no EDNS', async (t) => {
  const msg = buildQuery('WwW.Example.com', 'AAAA', { id: 0x5ead });
  t.equal(msg.toString('hex'), '5ead01000001000000000000' + '03577757074578616d706c6503636f6d00' + '001c0001',
    'ID, RD, QDCOUNT 1; the name as given (case kept); AAAA IN');
  const d = decode(msg);
  t.match(d, { id: 0x5ead, qr: false, rd: true, question: { name: 'WwW.Example.com', type: T.AAAA, class: 1 }, answers: [], opt: null });
  const q = parseQuery(msg);
  t.ok(q instanceof Query, 'the server takes it as a query');
  if (q instanceof Query) t.match(q, { id: 0x5ead, qtype: T.AAAA, qclass: 1, edns: false, questionEnd: msg.length });
});

t.test('the root, numeric and TYPEn types, RD off, random IDs', async (t) => {
  t.equal(buildQuery('.', 'NS', { id: 1 }).toString('hex'), '000101000001000000000000' + '00' + '00020001', 'root NS (the health probe)');
  t.same(buildQuery('', 2, { id: 1 }), buildQuery('.', 'NS', { id: 1 }), "'' is the root too");
  t.equal(decode(buildQuery('svc.example', 'TYPE65')).question?.type, T.HTTPS);
  t.equal(decode(buildQuery('example.org', 'mx')).question?.type, T.MX);
  t.notOk(decode(buildQuery('example.org', 'A', { rd: false })).rd, 'rd: false clears RD');
  const ids = new Set(Array.from({ length: 50 }, () => decode(buildQuery('example.org', 'A')).id));
  t.ok(ids.size > 40, `IDs are random when not given (${ids.size} distinct of 50)`);
});

t.test('bad input throws with the reason', async (t) => {
  t.throws(() => buildQuery('example.org', 'NOPE'), /unknown query type "NOPE"/);
  t.throws(() => buildQuery('example.org', 0), /unknown query type "0"/);
  t.throws(() => buildQuery('example.org', 70000), /unknown query type "70000"/);
  t.throws(() => buildQuery(`${'a'.repeat(64)}.example`, 'A'), /label .* 64 octets/);
  t.throws(() => buildQuery(Array.from({ length: 30 }, () => 'abcdefghi').join('.'), 'A'), /encodes to \d+ octets \(max 255\)/);
});

t.test('a running server answers it', async (t) => {
  const { s } = await serverWithUpstream(t, {
    lists: { 'chat.txt': 'meebo.com\n' },
    handler: (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.9' }] }),
  });
  const blocked = await udpExchange(s.port, buildQuery('www.meebo.com', 'A', { id: 7 }));
  t.match(blocked && decode(blocked), { id: 7, rcode: 0, answers: [{ text: '127.0.0.1' }] }, 'blocked');
  const forwarded = await udpExchange(s.port, buildQuery('example.org', 'A', { id: 8 }));
  t.match(forwarded && decode(forwarded), { id: 8, rcode: 0, answers: [{ text: '192.0.2.9' }] }, 'forwarded');
});
