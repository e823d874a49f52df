// A message the server drops without an answer (a response sent to it, a query over a limit)
// must not leave its TCP connection "busy": it counts as idle again, so at a cap it can be
// closed to make room for a new client, and after a half-close it is closed at once.
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { buildQuery, T } from '../helpers/dns.js';
import { startSinkhole } from '../helpers/server.js';
import { startUpstream } from '../helpers/upstream.js';

function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

function open(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => resolve({ socket, closed }));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => undefined);
  });
}

t.test('connections whose messages were dropped are idle: the oldest makes room at the per-client cap', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  const s = await startSinkhole({ upstream: upstream.address, args: ['--tcp-max-per-client', '2', '--tcp-idle-timeout', '60000'] });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  // A response (QR set) sent to the server: never answered.
  const response = buildQuery('x.example', T.A);
  response[2] = response[2]! | 0x80;
  const a = await open(s.port);
  a.socket.write(frame(response));
  const b = await open(s.port);
  b.socket.write(frame(response));
  await new Promise((r) => setTimeout(r, 200));
  const c = await open(s.port);
  const answer = await new Promise<Buffer>((resolve) => {
    c.socket.once('data', resolve);
    c.socket.write(frame(buildQuery('www.example.org', T.A, { id: 9 })));
  });
  t.equal(answer.readUInt16BE(2), 9, 'the third connection is served');
  await a.closed;
  t.pass('the oldest idle connection (its message dropped) was closed to make room');
  b.socket.destroy();
  c.socket.destroy();
});
