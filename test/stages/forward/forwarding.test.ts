// Forwarding over real sockets: faithful relay, fresh IDs, answers checked against source,
// ID and question, failover, SERVFAIL within the bound, TC -> TCP, truncation for the client.
import { createSocket } from 'node:dgram';
import t, { type Test } from 'tap';
import { ask, tcpExchange, udpExchange } from '../../helpers/client.js';
import { buildQuery, decode, T } from '../../helpers/dns.js';
import { serverWithUpstream, startSinkhole } from '../../helpers/server.js';
import { buildReply, startUpstream, type Handler } from '../../helpers/upstream.js';

const answerA = (address = '192.0.2.7', ttl = 300): Handler => (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl, data: address }] });

const setup = (t: Test, handler: Handler, args: string[] = []) => serverWithUpstream(t, { handler, args, lists: { 'msn.txt': 'messenger.hotmail.com\n' } });

t.test('the upstream answer is relayed byte for byte: EDNS options, DNSSEC records, binary TXT', async (t) => {
  const binaryTxt = Buffer.from([5, 0, 1, 2, 0xfe, 0xff, 3, 0x2e, 0x00, 0x7f]);
  const rrsig = Buffer.alloc(40, 0xab);
  const { s, upstream } = await setup(t, (q) => ({
    answers: [
      { name: q.rawName, type: T.TXT, ttl: 300, data: binaryTxt },
      { name: q.rawName, type: T.RRSIG, ttl: 300, data: rrsig },
    ],
    opt: { options: [{ code: 65001, data: Buffer.from('edns-option-payload') }, { code: 10, data: Buffer.alloc(24, 7) }] },
  }));
  const query = buildQuery('TxT.ExAmPlE.org', T.TXT, { id: 4242, edns: true, dnssecOk: true });
  const reply = await udpExchange(s.port, query);
  t.ok(reply, 'answered');
  const sent = upstream.queries[0]!;
  const expected = buildReply(sent, {
    answers: [{ name: sent.rawName, type: T.TXT, ttl: 300, data: binaryTxt }, { name: sent.rawName, type: T.RRSIG, ttl: 300, data: rrsig }],
    opt: { options: [{ code: 65001, data: Buffer.from('edns-option-payload') }, { code: 10, data: Buffer.alloc(24, 7) }] },
  });
  expected.writeUInt16BE(4242, 0);
  t.same(reply, expected, 'identical to the upstream\'s bytes except the ID');
  const d = decode(reply!);
  t.equal(d.question?.name, 'TxT.ExAmPlE.org', '0x20 mixed case preserved');
  t.same(d.opt?.options.map((o) => o.code), [65001, 10], 'EDNS options relayed');
  t.same(d.answers[0]?.rdata, binaryTxt, 'binary TXT as it came');
  t.equal(sent.rawName, 'TxT.ExAmPlE.org', 'the upstream saw the client\'s case');
  t.not(sent.id, 4242, 'the upstream query has its own ID');
});

t.test('each upstream query gets a fresh random ID', async (t) => {
  const { s, upstream } = await setup(t, answerA());
  for (let i = 0; i < 8; i++) await ask(s.port, `n${i}.example.org`, T.A, { id: 1000 });
  const ids = new Set(upstream.queries.map((q) => q.id));
  t.equal(upstream.queries.length, 8);
  t.ok(ids.size >= 7, `8 queries, ${ids.size} distinct IDs`);
  t.notOk(ids.has(1000), 'never the client\'s ID');
});

t.test('answers from the wrong address, with the wrong ID or question are ignored', async (t) => {
  const spoofer = createSocket('udp4');
  await new Promise<void>((r) => spoofer.bind(0, '127.0.0.1', r));
  t.teardown(() => spoofer.close());
  // Each mode is its own name, asked at once: each waits out the forward budget.
  const { s, upstream } = await setup(t, (q) => {
    if (q.name.startsWith('spoof-port')) {
      // A correct-looking answer from another port, then silence from the real upstream.
      spoofer.send(buildReply(q, { answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '6.6.6.6' }] }), q.from.port, q.from.address);
      return { drop: true };
    }
    if (q.name.startsWith('wrong-id')) return { id: q.id ^ 0x5555, answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '6.6.6.6' }] };
    return { questionName: 'other.example.org', answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '6.6.6.6' }] };
  }, ['--upstream-timeout', '300']);
  const modes = ['spoof-port', 'wrong-id', 'wrong-question'];
  const replies = await Promise.all(modes.map((mode) => ask(s.port, `${mode}.example.org`, T.A)));
  modes.forEach((mode, i) => {
    t.equal(replies[i]!.rcode, 2, `${mode}: SERVFAIL, not the forged answer`);
    t.equal(replies[i]!.answers.length, 0);
  });
  t.ok(upstream.queries.length >= 3);
});

t.test('failover: a dead or failing upstream is skipped for the next one', async (t) => {
  const dead = await startUpstream(() => ({ drop: true }));
  const failing = await startUpstream(() => ({ rcode: 2 }));
  const good = await startUpstream(answerA('192.0.2.55'));
  const s = await startSinkhole({ upstream: [dead.address, failing.address, good.address], args: ['--upstream-timeout', '300'] });
  t.teardown(async () => {
    await s.close();
    await Promise.all([dead.close(), failing.close(), good.close()]);
  });
  const started = Date.now();
  const r = await ask(s.port, 'failover.example.org', T.A);
  t.equal(r.answers[0]?.text, '192.0.2.55', 'answer from the third upstream');
  t.equal(dead.queries.length, 1, 'the dead one was tried');
  t.equal(failing.queries.length, 1, 'the SERVFAIL one was tried');
  t.ok(Date.now() - started < 2000, 'within the per-upstream timeouts');
  const again = await ask(s.port, 'second.example.org', T.A);
  t.equal(again.answers[0]?.text, '192.0.2.55');
  t.equal(dead.queries.length, 1, 'later queries start with the upstream that answered');
});

t.test('all upstreams dead: SERVFAIL within the bound, with an Extended DNS Error', async (t) => {
  const dead1 = await startUpstream(() => ({ drop: true }));
  const dead2 = await startUpstream(() => ({ drop: true }));
  const s = await startSinkhole({ upstream: [dead1.address, dead2.address], args: ['--upstream-timeout', '1000'] });
  t.teardown(async () => {
    await s.close();
    await Promise.all([dead1.close(), dead2.close()]);
  });
  const started = Date.now();
  const r = await ask(s.port, 'nobody-home.example.org', T.A, { edns: true });
  const elapsed = Date.now() - started;
  t.equal(r.rcode, 2, 'SERVFAIL');
  t.ok(elapsed >= 1900 && elapsed < 4500, `answered after both timeouts, within the 4 s budget (${elapsed} ms)`);
  t.equal(r.opt?.options[0]?.code, 15, 'EDE option present');
  t.equal(r.opt?.options[0]?.data.readUInt16BE(0), 22, 'EDE 22: No Reachable Authority');
  t.match(r.opt?.options[0]?.data.subarray(2).toString(), /did not answer/, 'with the reason');
  t.same([dead1.queries.length, dead2.queries.length].sort(), [1, 2], 'three tries across the two, round robin');
  t.match(s.logs.find((l) => l.msg === 'upstream failure'), { qname: 'nobody-home.example.org', qtype: 'A' }, 'the failure is logged');
});

t.test('a lost packet is asked again after the learnt round-trip time, not the full timeout', async (t) => {
  let drop = false;
  const { s, upstream } = await setup(t, (q) => (drop ? ((drop = false), { drop: true }) : answerA('192.0.2.10')(q)), ['--upstream-timeout', '3000']);
  for (let i = 0; i < 5; i++) await ask(s.port, `warm${i}.example.org`, T.A);
  drop = true;
  const started = Date.now();
  const r = await ask(s.port, 'lost-once.example.org', T.A);
  const elapsed = Date.now() - started;
  t.equal(r.answers[0]?.text, '192.0.2.10');
  t.equal(upstream.queries.filter((q) => q.name === 'lost-once.example.org').length, 2, 'asked twice');
  t.ok(elapsed < 1000, `answered after ~${elapsed} ms: a fast upstream's retry comes in a fraction of --upstream-timeout`);
});

t.test('a slow answer to the first try still counts after the retry went out', async (t) => {
  let n = 0;
  // The first try is answered late (after the retry was sent); every retry is lost.
  const { s, upstream } = await setup(t, (q) => (q.name.startsWith('warm') ? answerA('192.0.2.1')(q)
    : n++ === 0 ? { ...answerA('192.0.2.11')(q), delayMs: 600 } : { drop: true }), ['--upstream-timeout', '3000']);
  for (let i = 0; i < 5; i++) await ask(s.port, `warm${i}.example.org`, T.A);
  const r = await ask(s.port, 'slow.example.org', T.A);
  t.equal(r.answers[0]?.text, '192.0.2.11', 'the late answer to the first try');
  t.ok(upstream.queries.filter((q) => q.name === 'slow.example.org').length >= 2, 'a retry went out meanwhile');
});

t.test('a single upstream is asked again before giving up (a lost packet is not a failure)', async (t) => {
  let n = 0;
  const { s, upstream } = await setup(t, (q) => (n++ === 0 ? { drop: true } : answerA('192.0.2.9')(q)), ['--upstream-timeout', '300']);
  const r = await ask(s.port, 'lossy.example.org', T.A);
  t.equal(r.answers[0]?.text, '192.0.2.9');
  t.equal(upstream.queries.length, 2);
});

t.test('a truncated upstream answer is fetched again over TCP; clients get what they can take', async (t) => {
  const many = (name: string) => Array.from({ length: 60 }, (_, i) => ({ name, type: T.A, ttl: 300, data: `198.51.100.${i + 1}` }));
  const { s, upstream } = await setup(t, (q) => (q.tcp ? { answers: many(q.rawName) } : { tc: true }));
  const overTcp = await ask(s.port, 'big.example.org', T.A, { tcp: true });
  t.equal(overTcp.answers.length, 60, 'the full answer over TCP');
  t.same(upstream.queries.map((q) => q.tcp), [false, true], 'upstream asked over UDP, then over TCP after TC');

  const plain = await ask(s.port, 'big.example.org', T.A);
  t.ok(plain.tc, 'a client without EDNS (512 bytes) gets TC');
  t.equal(plain.answers.length, 0, 'and no partial records');
  t.equal(plain.question?.name, 'big.example.org', 'with the question');

  const edns = await ask(s.port, 'big.example.org', T.A, { edns: true, udpSize: 4096 });
  t.notOk(edns.tc, 'an EDNS client with 4096 bytes gets the whole answer over UDP');
  t.equal(edns.answers.length, 60);
  const small = await ask(s.port, 'big.example.org', T.A, { edns: true, udpSize: 600 });
  t.ok(small.tc, 'an EDNS client advertising 600 bytes gets TC');
  t.ok(small.opt, 'and an OPT record, since it sent one');
});

t.test('TCP: several queries on one connection, answered as they complete', async (t) => {
  const { s } = await setup(t, (q) => ({
    delayMs: q.name.startsWith('slow') ? 400 : 0,
    answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.1' }],
  }));
  const names = ['slow.example.org', 'fast1.example.org', 'fast2.example.org', 'messenger.hotmail.com'];
  const replies = await tcpExchange(s.port, names.map((n, i) => buildQuery(n, T.A, { id: 100 + i })));
  const order = replies.map((r) => decode(r).question?.name);
  t.equal(replies.length, 4, 'every query answered on the one connection');
  t.equal(order[order.length - 1], 'slow.example.org', 'the slow one last: answers do not wait for each other');
  t.same(replies.map((r) => decode(r).id).sort(), [100, 101, 102, 103], 'each with its own ID');
});

t.test('TCP: idle connections are closed; connections are capped', async (t) => {
  const { s } = await setup(t, answerA(), ['--tcp-idle-timeout', '300', '--tcp-max-connections', '2']);
  const { connect } = await import('node:net');
  const open = () => new Promise<import('node:net').Socket>((resolve) => {
    const c = connect(s.port, '127.0.0.1', () => resolve(c));
    c.on('error', () => undefined);
  });
  const closed = (c: import('node:net').Socket) => new Promise<number>((resolve) => {
    const started = Date.now();
    c.on('close', () => resolve(Date.now() - started));
  });
  const a = await open();
  const aClosed = closed(a);
  await new Promise((r) => setTimeout(r, 20));
  const b = await open();
  const c = await open();
  const aLifetime = await aClosed;
  t.ok(aLifetime < 250, 'a third connection over the cap of 2 closes the one idle the longest (RFC 7766 6.2.3)');
  const [bIdle] = await Promise.all([closed(b), closed(c)]);
  t.ok(bIdle >= 150 && bIdle < 2000, `an idle connection is closed after the idle timeout (${bIdle} ms)`);
});

t.test('garbage never crashes the server: FORMERR, NOTIMP or silence, then normal answers', async (t) => {
  const { s } = await setup(t, answerA());
  const header = (flags: number, qd: number, an = 0, ar = 0): Buffer => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(0x1234, 0);
    h.writeUInt16BE(flags, 2);
    h.writeUInt16BE(qd, 4);
    h.writeUInt16BE(an, 6);
    h.writeUInt16BE(ar, 10);
    return h;
  };
  const q = buildQuery('example.org', T.A, { id: 0x1234 });
  const cases: [string, Buffer, number | null][] = [
    ['5 random bytes', Buffer.from([1, 2, 3, 4, 5]), null],
    ['a response sent to the server', Buffer.concat([header(0x8180, 1), q.subarray(12)]), null],
    ['no question', header(0x0100, 0), 1],
    ['two questions', Buffer.concat([header(0x0100, 2), q.subarray(12), q.subarray(12)]), 1],
    ['a record in the answer section', Buffer.concat([header(0x0100, 1, 1), q.subarray(12)]), 1],
    ['question cut short', q.subarray(0, q.length - 3), 1],
    ['label of 64 bytes', Buffer.concat([header(0x0100, 1), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]), 1],
    ['compression pointer in the question', Buffer.concat([header(0x0100, 1), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 1],
    ['additional count past the end', Buffer.concat([header(0x0100, 1, 0, 2), q.subarray(12)]), 1],
    ['oversized (5000 bytes)', Buffer.concat([q, Buffer.alloc(5000)]), 1],
    ['opcode STATUS', Buffer.concat([header(0x1100, 1), q.subarray(12)]), 4],
    ['EDNS version 1', Buffer.concat([header(0x0100, 1, 0, 1), q.subarray(12), Buffer.from([0, 0, 41, 4, 0xd0, 0, 1, 0, 0, 0, 0])]), 16],
  ];
  for (const [label, msg, rcode] of cases) {
    const reply = await udpExchange(s.port, msg, rcode === null ? 300 : 3000);
    if (rcode === null) t.equal(reply, null, `${label}: dropped`);
    else t.equal(reply && decode(reply).rcode, rcode, `${label}: rcode ${rcode}`);
    if (reply) t.equal(reply.readUInt16BE(0), 0x1234, `${label}: with the query's ID`);
  }
  const random = Array.from({ length: 300 }, (_, i) => Buffer.from(Array.from({ length: 12 + (i % 60) }, () => Math.floor(Math.random() * 256))));
  await Promise.all(random.map((m) => udpExchange(s.port, m, 200)));
  const tcpReplies = await tcpExchange(s.port, [Buffer.from([0xff, 0xff, 0xff]), buildQuery('after.example.org', T.A, { id: 7 })], 3000, '127.0.0.1', 1);
  t.same(tcpReplies.map((r) => decode(r).id), [7], 'a garbage frame over TCP is dropped; the next query on the connection is answered');
  const after = await ask(s.port, 'still-alive.example.org', T.A);
  t.equal(after.answers[0]?.text, '192.0.2.7', 'the server still answers');
});
