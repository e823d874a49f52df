// The stage chain itself: a stage added to a chain sees every query in order, can answer,
// pass or take a query, and sees answers found by later stages on their way back.
import t from 'tap';
import pino from 'pino';
import type { Transport } from '../../src/net/transport.js';
import type { QueryEvent } from '../../src/observe/event.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { ANSWERED, PASS, PENDING, type Stage } from '../../src/pipeline/stage.js';
import { MetricsSink, metricValue } from '../../src/pipeline/metrics.js';
import { queryEmptyAnswer } from '../../src/wire/answer.js';
import { RCODE } from '../../src/wire/constants.js';
import { keyToText } from '../../src/wire/names.js';
import { packAnswer } from '../../src/wire/packed-answer.js';
import { inspectResponse } from '../../src/wire/response.js';
import type { Query } from '../../src/wire/query.js';
import { ask } from '../helpers/client.js';
import { buildQuery, decode, T } from '../helpers/dns.js';
import { serverWithUpstream } from '../helpers/server.js';
import { buildReply } from '../helpers/upstream.js';

const log = pino({ level: 'silent' });

/** A transport that keeps what is sent. */
function collector(): Transport & { sent: Buffer[] } {
  const sent: Buffer[] = [];
  return { udp: true, sent, send: (answer: Buffer) => sent.push(answer) };
}

t.test('a trivial stage added to a chain: answers what it owns, passes the rest on', async (t) => {
  // The trivial stage: names under "example.test" are answered NXDOMAIN here.
  const seen: string[] = [];
  const testZone: Stage = {
    name: 'test-zone',
    onQuery(q, p) {
      seen.push(keyToText(q.qnameKey));
      if (!keyToText(q.qnameKey).endsWith('example.test')) return PASS;
      p.reply(q, queryEmptyAnswer(q, RCODE.NXDOMAIN), 'local');
      return ANSWERED;
    },
  };
  // The last stage answers everything else with SERVFAIL, like a forwarder with no upstream.
  const last: Stage = { name: 'last', onQuery(q, p) { p.reply(q, queryEmptyAnswer(q, RCODE.SERVFAIL), 'servfail'); return ANSWERED; } };
  const pipeline = new Pipeline([testZone, last], log);
  const events: string[] = [];
  pipeline.setObservers([{ answered: (e: QueryEvent) => events.push(`${keyToText(e.query.qnameKey)} ${e.outcome} ${e.rcode}`) }]);
  const transport = collector();
  pipeline.handle(buildQuery('a.example.test', T.A, { id: 7 }), '127.0.0.1', 5000, transport);
  pipeline.handle(buildQuery('www.example.org', T.A, { id: 8 }), '127.0.0.1', 5000, transport);
  t.same(seen, ['a.example.test', 'www.example.org'], 'the stage sees every query');
  t.match(decode(transport.sent[0]!), { id: 7, rcode: RCODE.NXDOMAIN }, 'it answers what it owns');
  t.match(decode(transport.sent[1]!), { id: 8, rcode: RCODE.SERVFAIL }, 'the rest goes on to the next stage');
  t.same(events, ['a.example.test local 3', 'www.example.org servfail 2'], 'observers are told the outcome and rcode');
});

t.test('answers found later travel back through the earlier stages, last to first', async (t) => {
  const order: string[] = [];
  const watcher = (name: string): Stage => ({
    name, onQuery: () => PASS, onAnswer: () => {
      order.push(name);
      return PASS;
    },
  });
  let held: Query | null = null;
  const upstreamLike: Stage = { name: 'later', onQuery(q) { held = q; return PENDING; }, pending: () => (held === null ? 0 : 1) };
  const pipeline = new Pipeline([watcher('first'), watcher('second'), upstreamLike], log);
  const transport = collector();
  pipeline.handle(buildQuery('www.example.org', T.A, { id: 99 }), '127.0.0.1', 5000, transport);
  t.equal(transport.sent.length, 0, 'a PENDING query is not answered yet');
  t.equal(pipeline.pending(), 1);
  const q = held! as Query;
  const wire = buildReply({ id: 1, rawName: 'www.example.org', name: 'www.example.org', type: T.A, class: 1, tcp: false, msg: q.msg, udpSize: 0,
    from: { address: '127.0.0.1', port: 1 } }, { answers: [{ name: 'www.example.org', type: T.A, ttl: 60, data: '192.0.2.1' }] });
  pipeline.deliver(q, packAnswer(wire, inspectResponse(wire, q.questionEnd)!, Date.now()), 'forwarded', 'test');
  t.same(order, ['second', 'first'], 'onAnswer from the stage before the producer back to the first');
  t.match(decode(transport.sent[0]!), { id: 99, answers: [{ text: '192.0.2.1' }] }, 'then relayed with the client\'s ID');
});

t.test('a stage that throws does not take the server down; malformed packets are counted', async (t) => {
  const broken: Stage = { name: 'broken', onQuery() { throw new Error('boom'); } };
  const pipeline = new Pipeline([broken], log);
  const transport = collector();
  t.doesNotThrow(() => pipeline.handle(buildQuery('x.example', T.A), '127.0.0.1', 1, transport));
  pipeline.handle(Buffer.from([1, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]), '127.0.0.1', 1, transport);
  t.equal(transport.sent.length, 1, 'FORMERR for two questions');
  const sink = new MetricsSink();
  pipeline.collect(sink);
  t.equal(metricValue(sink.families, 'sinkhole_packets_dropped_total', { reason: 'malformed' }), 1);
});

t.test('the real chain over a real socket: guard, policy, cache, forward', async (t) => {
  const { s, upstream } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: [{ name: q.name, type: T.A, ttl: 300, data: '192.0.2.9' }] }),
    lists: { 'msn-messenger.txt': 'messenger.hotmail.com\n' },
  });
  t.same(s.server.pipeline.stages.map((x) => x.name), ['guard', 'policy', 'local', 'cache', 'forward'], 'the chain, in order');
  t.match(await ask(s.port, 'www.example.org', T.A), { answers: [{ text: '192.0.2.9' }] }, 'forwarded');
  t.match(await ask(s.port, 'www.example.org', T.A), { answers: [{ text: '192.0.2.9' }] }, 'cached');
  t.match(await ask(s.port, 'messenger.hotmail.com', T.A), { answers: [{ text: '127.0.0.1' }] }, 'blocked');
  const any = await ask(s.port, 'www.example.org', T.ANY);
  t.same(any.answers.map((r) => [r.type, r.rdata.toString('latin1')]), [[13, '\x07RFC8482\x00']], 'ANY: one HINFO "RFC8482" (RFC 8482)');
  t.equal(upstream.queries.length, 1, 'one upstream query: the second came from the cache, the blocked one and ANY never left');
});
