// The TCP listener's defences over real sockets on 127.0.0.0/8: per-client caps below the
// listener's cap, the oldest idle connection closed to make room (RFC 7766 6.2.3), a whole-
// message deadline a trickle of bytes does not extend (slowloris), held-back pipelining,
// answers after the client half-closes, and pipelined queries cut by a reset.
import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { parseEndpoint, type Endpoint } from '../../src/net/endpoint.js';
import { listenTcp, type TcpListener, type TcpOptions } from '../../src/net/tcp.js';
import type { Transport } from '../../src/net/transport.js';
import { buildQuery, decode, T } from '../helpers/dns.js';
import { freePort, serverWithUpstream } from '../helpers/server.js';

interface Client {
  socket: Socket;
  replies: Buffer[];
  closed: Promise<number>;
  isClosed: () => boolean;
  send(msg: Buffer): void;
  nextReply(timeoutMs?: number): Promise<Buffer | null>;
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length, 0);
  return Buffer.concat([len, msg]);
}

async function open(port: number, from = '127.0.0.1'): Promise<Client> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen: true });
  socket.on('error', () => undefined);
  const replies: Buffer[] = [];
  const waiters: (() => void)[] = [];
  let buffered = Buffer.alloc(0);
  let done = false;
  const started = Date.now();
  // Closed = the server ended its side (the socket is half-open, so 'close' waits for ours).
  const closed = new Promise<number>((resolve) => {
    const onClose = (): void => {
      if (done) return;
      done = true;
      for (const w of waiters.splice(0)) w();
      resolve(Date.now() - started);
    };
    socket.on('end', onClose);
    socket.on('close', onClose);
  });
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      replies.push(Buffer.from(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
      buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
    }
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  t.teardown(() => socket.destroy());
  let taken = 0;
  return {
    socket, replies, closed, isClosed: () => done,
    send: (msg) => socket.write(frame(msg)),
    nextReply: async (timeoutMs = 2000) => {
      const until = Date.now() + timeoutMs;
      while (replies.length <= taken && !done && Date.now() < until) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, until - Date.now());
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return replies.length > taken ? replies[taken++]! : null;
    },
  };
}

/** A listener whose handler answers each query by echoing it with QR set, after `delayMs` of the query's name. */
async function startListener(t: Test, options: TcpOptions, delayFor: (msg: Buffer) => number | null = () => 0) {
  const endpoint = parseEndpoint(`127.0.0.1:${await freePort()}`, undefined) as Endpoint;
  const handled: { address: string; port: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const handle = (msg: Buffer, address: string, port: number, transport: Transport): void => {
    handled.push({ address, port });
    const delay = delayFor(msg);
    if (delay === null) return;
    const reply = Buffer.from(msg);
    reply[2]! |= 0x80;
    if (delay === 0) transport.send(reply, address, port);
    else {
      const timer = setTimeout(() => {
        timers.delete(timer);
        transport.send(reply, address, port);
      }, delay);
      timers.add(timer);
    }
  };
  const listener: TcpListener = await listenTcp(endpoint, handle, options);
  t.teardown(async () => {
    for (const timer of timers) clearTimeout(timer);
    await listener.close();
  });
  return { listener, port: endpoint.port, handled };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const query = (name: string, id = 1): Buffer => buildQuery(name, T.A, { id });

t.test('one client cannot hold every connection: its oldest idle ones make room for its new ones', async (t) => {
  const { listener, port } = await startListener(t, { idleTimeoutMs: 10_000, maxConnections: 8, maxConnectionsPerClient: 3 });
  const hog: Client[] = [];
  for (let i = 0; i < 12; i++) hog.push(await open(port, '127.0.0.1'));
  await sleep(100);
  t.equal(listener.connectionsFrom('127.0.0.1'), 3, 'at most 3 connections from 127.0.0.1');
  t.same(hog.map((c) => c.isClosed()), [...Array<boolean>(9).fill(true), false, false, false], 'the oldest were closed, the newest 3 kept');
  t.equal(listener.counters.evicted, 9, 'counted as evicted');
  // Other clients get in and are answered.
  for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
    const c = await open(port, from);
    c.send(query(`from-${from}.example`));
    const reply = await c.nextReply();
    t.ok(reply !== null && decode(reply).qr, `a client at ${from} is answered`);
  }
  t.equal(listener.counters.refused, 0, 'nobody refused');
});

t.test('at the listener\'s cap the connection idle the longest is closed, a busy one never; all busy: the new one is refused', async (t) => {
  const { listener, port } = await startListener(t, { idleTimeoutMs: 10_000, maxConnections: 3, maxConnectionsPerClient: 3 },
    (msg) => (decode(msg).question?.name.startsWith('slow') ? 800 : 0));
  const busy = await open(port, '127.0.0.2');
  const idleOld = await open(port, '127.0.0.3');
  await sleep(30);
  const idleNew = await open(port, '127.0.0.4');
  idleNew.send(query('fast.example'));
  await idleNew.nextReply();
  busy.send(query('slow.example', 9));
  await sleep(30);
  const newcomer = await open(port, '127.0.0.5');
  newcomer.send(query('fast.example'));
  t.ok(await newcomer.nextReply(), 'the new client is answered');
  await idleOld.closed;
  t.pass('the connection idle the longest was closed to make room');
  t.notOk(busy.isClosed(), 'the connection waiting for an answer was not');
  t.notOk(idleNew.isClosed(), 'the one active more recently was not');

  // Now every connection waits for an answer: a new client is refused, not a busy one closed.
  idleNew.send(query('slow2.example'));
  newcomer.send(query('slow3.example'));
  await sleep(30);
  const refused = await open(port, '127.0.0.6').catch(() => null);
  const refusedAfter = refused === null ? 0 : await refused.closed;
  t.ok(refusedAfter < 500, `with every connection busy the new one is closed at once (${refusedAfter} ms)`);
  t.equal(listener.counters.refused, 1, 'counted as refused');
  const answer = await busy.nextReply(2000);
  t.equal(answer && decode(answer).id, 9, 'the busy connection still got its answer');
});

t.test('slowloris: a message trickled a byte at a time is cut at the message deadline', async (t) => {
  const { listener, port, handled } = await startListener(t, { idleTimeoutMs: 5000, maxConnections: 10, messageTimeoutMs: 300 });
  const msg = frame(query('trickle.example'));
  const slow = await open(port);
  let sent = 0;
  const trickle = setInterval(() => {
    if (sent < msg.length && !slow.isClosed()) slow.socket.write(msg.subarray(sent, ++sent));
  }, 40);
  t.teardown(() => clearInterval(trickle));
  const lifetime = await Promise.race([slow.closed, sleep(3000).then(() => -1)]);
  clearInterval(trickle);
  t.ok(lifetime >= 250 && lifetime < 1200, `closed ${lifetime} ms after its first byte, although bytes kept coming every 40 ms`);
  t.ok(sent < msg.length, `the message was never finished (${sent} of ${msg.length} bytes)`);
  t.equal(listener.counters.messageTimeouts, 1, 'counted as a message timeout');
  t.equal(handled.length, 0, 'nothing handed to the resolver');

  // An ordinary client whose message comes in two pieces is answered.
  const split = await open(port);
  const whole = frame(query('split.example', 77));
  split.socket.write(whole.subarray(0, 7));
  await sleep(100);
  split.socket.write(whole.subarray(7));
  const reply = await split.nextReply();
  t.equal(reply && decode(reply).id, 77, 'a message split over 100 ms is answered');
});

t.test('idle connections are closed after the idle timeout; queries and answers keep them open', async (t) => {
  const { listener, port } = await startListener(t, { idleTimeoutMs: 300, maxConnections: 10 });
  const idle = await open(port);
  const active = await open(port);
  const ticker = setInterval(() => active.send(query('keepalive.example')), 100);
  t.teardown(() => clearInterval(ticker));
  const idleFor = await idle.closed;
  t.ok(idleFor >= 250 && idleFor < 1500, `the idle one closed after ${idleFor} ms`);
  await sleep(400);
  t.notOk(active.isClosed(), 'the one asking every 100 ms is still open');
  clearInterval(ticker);
  await active.closed;
  t.ok(listener.counters.idleTimeouts >= 2, 'both counted as idle timeouts');
});

t.test('pipelining: at most maxPipelined queries wait at once; the rest are held, then answered', async (t) => {
  const { port, handled } = await startListener(t, { idleTimeoutMs: 5000, maxConnections: 10, maxPipelined: 4 }, () => 150);
  const c = await open(port);
  c.socket.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => frame(query(`p${i}.example`, i)))));
  await sleep(80);
  t.equal(handled.length, 4, 'only 4 handed on while none is answered');
  for (let i = 0; i < 20; i++) if ((await c.nextReply(3000)) === null) break;
  t.equal(c.replies.length, 20, 'all 20 answered in the end');
  t.same(c.replies.map((r) => decode(r).id).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i), 'each once');
});

t.test('a client that half-closes after its queries still gets forwarded answers', async (t) => {
  const { s } = await serverWithUpstream(t, {
    handler: (q) => ({ delayMs: 200, answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.9' }] }),
    lists: { 'block.txt': 'blocked.example\n' },
  });
  const c = await open(s.port);
  c.socket.write(Buffer.concat([frame(query('forwarded.example', 1)), frame(query('blocked.example', 2)), frame(query('also-forwarded.example', 3))]));
  c.socket.end();
  const ended = new Promise<void>((resolve) => c.socket.once('end', () => resolve()));
  for (let i = 0; i < 3; i++) await c.nextReply(3000);
  t.same(c.replies.map((r) => decode(r).id).sort(), [1, 2, 3], 'all three answered after the half-close');
  const forwarded = c.replies.find((r) => decode(r).id === 1);
  t.equal(forwarded && decode(forwarded).answers[0]?.text, '192.0.2.9', 'the forwarded one with the upstream\'s answer');
  await Promise.race([ended, sleep(2000)]);
  t.ok(c.socket.readableEnded, 'then the server closed its side');
});

t.test('pipelined queries followed by a reset: no error logged, the server keeps answering', async (t) => {
  const { s } = await serverWithUpstream(t, {
    handler: (q) => ({ delayMs: 20, answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.10' }] }),
    lists: { 'block.txt': 'blocked.example\n' },
  });
  for (let round = 0; round < 40; round++) {
    const socket = connect({ port: s.port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const msgs = Array.from({ length: 30 }, (_, i) => frame(query(i % 3 === 0 ? 'blocked.example' : `r${round}-${i}.example`, i)));
    socket.write(Buffer.concat(msgs));
    if (round % 2 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    socket.resetAndDestroy();
  }
  await sleep(500);
  const errors = s.logs.filter((l) => (l.level as number) >= 50);
  t.same(errors, [], 'no error-level log lines');
  const c = await open(s.port);
  c.send(query('after.example', 5));
  const reply = await c.nextReply();
  t.equal(reply && decode(reply).answers[0]?.text, '192.0.2.10', 'still answering over TCP');
});
