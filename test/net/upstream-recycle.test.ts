// The addon's upRecycle (batch_udp.c): an upstream socket whose query is done is made ready
// for the next one without being closed. What must hold: its old port is released (the next
// connect picks a new random one, RFC 5452, and nothing sent to the old port arrives), and
// whatever was queued on it (a duplicate or late answer, an ICMP error) is thrown away, never
// delivered as an answer for the next query.
//
// The upstream runs in a worker thread, so that it can answer while this thread is blocked
// (Atomics.wait) and the addon cannot read: its answers stay queued on the socket, as they
// would when they come between two turns of a busy event loop.
import t from 'tap';
import { createSocket } from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { loadBatchUdp, type UpstreamSocketsAddon } from '../../src/net/batch-udp.js';
import { addonRequired } from '../helpers/batch-udp.js';

const load = loadBatchUdp();
if (load.addon === null && addonRequired()) t.fail(`the batched UDP addon must be built in CI: ${load.reason}`);
const addon = load.addon as unknown as UpstreamSocketsAddon | null;
const skip = addon === null ? load.reason ?? true : false;

// Answers every datagram twice ("<query>:<source port>:1" and ":2"); on "q2" it also sends
// "to-old-port" to the first source port it saw.
const UPSTREAM = `
  const { parentPort } = require('node:worker_threads');
  const { createSocket } = require('node:dgram');
  const s = createSocket('udp4');
  let first = 0;
  s.on('message', (m, r) => {
    const q = m.toString();
    if (first === 0) first = r.port;
    s.send(q + ':' + r.port + ':1', r.port, r.address);
    s.send(q + ':' + r.port + ':2', r.port, r.address);
    if (q === 'q2') s.send('to-old-port', first, r.address);
    parentPort.postMessage({ seen: q, port: r.port });
  });
  parentPort.on('message', (m) => { if (m === 'close') s.close(() => parentPort.close()); });
  s.bind(0, '127.0.0.1', () => parentPort.postMessage({ port: s.address().port }));
`;

/** Blocks this thread (and so its event loop and the addon's reads) for `ms`. */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('upRecycle: a new random port for the next query; what was queued on the old one is never delivered', { skip }, async (t) => {
  const up = addon!;
  const worker = new Worker(UPSTREAM, { eval: true });
  const seen: { seen: string; port: number }[] = [];
  const port = await new Promise<number>((resolve) => {
    worker.on('message', (m: { seen?: string; port: number }) => {
      if (m.seen === undefined) resolve(m.port);
      else seen.push(m as { seen: string; port: number });
    });
  });
  t.teardown(() => worker.postMessage('close'));

  const delivered: { fd: number; len: number; text: string }[] = [];
  const set = up.upOpen((count, payloads) => {
    const meta = new Int32Array(set.meta);
    for (let i = 0; i < count; i++) {
      const [fd, len, offset] = [meta[i * 3]!, meta[i * 3 + 1]!, meta[i * 3 + 2]!];
      delivered.push({ fd, len, text: len > 0 ? payloads.subarray(offset, offset + len).toString() : '' });
    }
  });
  t.teardown(() => up.upClose(set.handle));

  const fd = up.upSocket(set.handle, 4);
  t.ok(fd >= 0, `a socket (${fd})`);
  t.equal(up.upConnectSend(set.handle, fd, '127.0.0.1', port, Buffer.from('q1')), 0, 'q1 sent');
  block(300);  // the worker answers q1 twice; both wait on the socket, unread
  t.equal(up.upRecycle!(set.handle, fd), 0, 'recycled, with two answers still queued');
  t.equal(up.upConnectSend(set.handle, fd, '127.0.0.1', port, Buffer.from('q2')), 0, 'q2 sent on the same socket');
  for (let i = 0; i < 100 && delivered.filter((d) => d.text.startsWith('q2')).length < 2; i++) await settle(10);
  await settle(100);  // time for "to-old-port" to arrive, were the old port still this socket's

  const q1Port = seen.find((s) => s.seen === 'q1')?.port;
  const q2Port = seen.find((s) => s.seen === 'q2')?.port;
  t.ok(q1Port !== undefined && q2Port !== undefined && q1Port !== q2Port, `q2 left from another port (${q1Port}, then ${q2Port})`);
  t.same(delivered.map((d) => d.text).sort(), [`q2:${q2Port}:1`, `q2:${q2Port}:2`], 'only q2\'s two answers were delivered: not q1\'s, nor what was sent to the old port');
  t.ok(delivered.every((d) => d.fd === fd && d.len > 0), 'on that socket, no error');
  up.upCloseSocket(set.handle, fd);
});

t.test('upRecycle: an ICMP error left on the socket (ECONNREFUSED) is cleared, not told to the next query', { skip }, async (t) => {
  const up = addon!;
  // A port with nobody on it: bound, noted, closed.
  const gone = createSocket('udp4');
  await new Promise<void>((r) => gone.bind(0, '127.0.0.1', r));
  const deadPort = gone.address().port;
  await new Promise<void>((r) => gone.close(r));
  const live = createSocket('udp4');
  live.on('message', (m, r) => live.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address));
  await new Promise<void>((r) => live.bind(0, '127.0.0.1', r));
  t.teardown(() => live.close());

  const delivered: { len: number; text: string }[] = [];
  const opened = up.upOpen((count, payloads) => {
    const meta = new Int32Array(opened.meta);
    for (let i = 0; i < count; i++) {
      const [len, offset] = [meta[i * 3 + 1]!, meta[i * 3 + 2]!];
      delivered.push({ len, text: len > 0 ? payloads.subarray(offset, offset + len).toString() : '' });
    }
  });
  t.teardown(() => up.upClose(opened.handle));
  const fd = up.upSocket(opened.handle, 4);
  t.equal(up.upConnectSend(opened.handle, fd, '127.0.0.1', deadPort, Buffer.from('x')), 0, 'sent to a port nobody listens on');
  block(100);  // the ICMP "port unreachable" is pending on the socket, unread
  t.equal(up.upRecycle!(opened.handle, fd), 0, 'recycled');
  t.equal(up.upConnectSend(opened.handle, fd, '127.0.0.1', live.address().port, Buffer.from('y')), 0, 'the next query sent');
  for (let i = 0; i < 100 && delivered.length === 0; i++) await settle(10);
  await settle(50);
  t.same(delivered, [{ len: 4, text: 're:y' }], 'its answer, and no ECONNREFUSED');
  up.upCloseSocket(opened.handle, fd);
});

t.test('upRecycle refuses a socket it does not hold', { skip }, async (t) => {
  const up = addon!;
  const opened = up.upOpen(() => {});
  t.teardown(() => up.upClose(opened.handle));
  t.ok(up.upRecycle!(opened.handle, 100000) < 0, 'an fd out of range: a negated errno');
  const fd = up.upSocket(opened.handle, 4);
  up.upCloseSocket(opened.handle, fd);
  t.ok(up.upRecycle!(opened.handle, fd) < 0, 'a closed socket: a negated errno (the caller closes, nothing to recycle)');
});
