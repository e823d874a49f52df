// The benchmark's bare relay (bench/relay.ts), the floor W4 is compared with: every query
// reaches the upstream under a new ID and every answer goes back to the socket that asked,
// with that socket's own ID, also when many are in flight at once.
import { createSocket } from 'node:dgram';
import t from 'tap';
import { startRelay } from '../../bench/relay.js';
import { startUpstream } from '../helpers/upstream.js';
import { encodeName, T } from '../helpers/dns.js';

function query(id: number, name: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(T.A, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(name), tail]);
}

t.test('answers return to the asking socket with its own ID', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.name, type: T.A, ttl: 60, data: '192.0.2.1' }] }));
  t.teardown(() => upstream.close());
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  const relay = await startRelay(port, upstream.port);
  t.teardown(() => relay.close());

  // Two clients, 200 queries each, all at once, with the same IDs on both.
  const answers = await Promise.all(['a', 'b'].map(async (who) => {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const got = new Map<number, string>();
    const done = new Promise<void>((resolve) => socket.on('message', (msg) => {
      // The qname's first label: "q<N>-<who>".
      got.set(msg.readUInt16BE(0), msg.toString('latin1', 13, 13 + msg[12]!));
      if (got.size === 200) resolve();
    }));
    for (let i = 0; i < 200; i++) socket.send(query(1000 + i, `q${i}-${who}.bench.test`), port, '127.0.0.1');
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    socket.close();
    return { who, got };
  }));
  for (const { who, got } of answers) {
    t.equal(got.size, 200, `${who}: 200 answers`);
    t.ok([...got].every(([id, label]) => label === `q${id - 1000}-${who}`), `${who}: each answer carries the ID of its own query`);
  }
  t.equal(upstream.queries.length, 400, 'the upstream saw every query');
  t.equal(new Set(upstream.queries.map((q) => q.id)).size, 400, 'under 400 different IDs');
});
