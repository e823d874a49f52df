// The addon hands datagrams to JavaScript in pool Buffers shared by many batches
// (payload_pool in batch_udp.c), for the listener and for the upstream sockets alike. What a
// handler keeps without copying (a query in flight, an upstream answer) must stay as it came
// while later batches fill the pool and the next one; and batches must share a few pools
// (one ArrayBuffer per batch was a cost of every scavenge: docs/performance.md).
import t from 'tap';
import { spawn } from 'node:child_process';
import { listenUdpBatched, loadBatchUdp } from '../../src/net/batch-udp.js';
import { parseEndpoint, type Endpoint } from '../../src/net/endpoint.js';
import { UdpUpstreamClient } from '../../src/stages/forward/transports/udp.js';
import { mustKey } from '../../src/wire/names.js';
import { buildQuery, T } from '../helpers/dns.js';
import { startUpstream } from '../helpers/upstream.js';
import { addonRequired } from '../helpers/batch-udp.js';

const load = loadBatchUdp();
if (load.addon === null && addonRequired()) t.fail(`the batched UDP addon must be built in CI: ${load.reason}`);
const skip = load.addon === null ? load.reason ?? true : false;

/** The pool's size in batch_udp.c (POOL_BYTES). */
const POOL_BYTES = 256 * 1024;

function endpoint(text: string): Endpoint {
  const e = parseEndpoint(text, undefined);
  if ('error' in e) throw new Error(e.error);
  return e;
}

/** Datagram i: its number in the first two bytes, then `size - 2` bytes of (i % 251). */
function datagram(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i % 251);
  b.writeUInt16BE(i, 0);
  return b;
}

t.test('listener: 700 kept datagrams (630 KB, three pools) stay as sent; batches share a few pool Buffers', { skip }, async (t) => {
  const kept: Buffer[] = [];
  const listener = await listenUdpBatched(endpoint('127.0.0.1:0'), (msg) => {
    kept.push(msg);  // no copy: the bytes must not change under it
  }, (err) => t.fail(err.message));
  t.teardown(() => listener.close());
  const count = 700;
  const size = 900;
  // Another process sends, 10 at a time with a pause, so that they arrive as many batches.
  const sender = spawn(process.execPath, ['-e', `
    const s = require('node:dgram').createSocket('udp4');
    let i = 0;
    const wave = () => {
      for (let k = 0; k < 10 && i < ${count}; k++, i++) {
        const b = Buffer.alloc(${size}, i % 251);
        b.writeUInt16BE(i, 0);
        s.send(b, ${listener.port}, '127.0.0.1');
      }
      if (i < ${count}) setTimeout(wave, 2); else setTimeout(() => process.exit(0), 50);
    };
    wave();`], { stdio: 'ignore' });
  await new Promise((resolve) => sender.on('exit', resolve));
  for (let i = 0; i < 100 && kept.length < count; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(kept.length, count, 'every datagram reached the handler');
  const wrong = kept.filter((msg) => !msg.equals(datagram(msg.readUInt16BE(0), size)));
  t.equal(wrong.length, 0, 'each kept datagram still holds what was sent (none overwritten by a later batch)');
  t.same(kept.map((m) => m.readUInt16BE(0)).sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i), 'each once');
  const pools = new Set(kept.map((m) => m.buffer)).size;
  t.ok(listener.batches >= 10, `many batches (${listener.batches})`);
  t.ok(pools <= Math.ceil((count * size) / POOL_BYTES) + 1, `${pools} pool Buffers for ${listener.batches} batches`);
  t.ok(pools < listener.batches, 'fewer Buffers than batches');
});

t.test('upstream sockets: 400 kept answers (1 KB each) stay as sent; deliveries share a few pool Buffers', { skip }, async (t) => {
  // Each answer: a TXT record whose text is the qname's number, repeated to ~1 KB.
  const text = (name: string): Buffer => {
    const n = name.split('.')[0]!;
    const s = Buffer.from(n.repeat(Math.ceil(250 / n.length)).slice(0, 250));
    return Buffer.concat([0, 1, 2, 3].map(() => Buffer.concat([Buffer.from([s.length]), s])));
  };
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.TXT, ttl: 60, data: text(q.name) }] }));
  t.teardown(() => upstream.close());
  const client = new UdpUpstreamClient((err) => t.fail(err.message));
  t.teardown(() => client.close());
  t.equal(client.sockets, 'addon');
  const up = { host: upstream.host, port: upstream.port, family: 4 as const, label: upstream.address };
  const answers = new Map<string, Buffer>();
  // 8 waves of 50 queries: each wave's answers come in one or more deliveries.
  for (let wave = 0; wave < 8; wave++) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => {
      const name = `n${wave * 50 + k}.pool.example`;
      return new Promise<void>((resolve) => {
        client.send(up, buildQuery(name, T.TXT, { id: 1 }), mustKey(name), T.TXT, 1, Date.now() + 3000, (response) => {
          if (response !== null) answers.set(name, response);  // kept, not copied
          resolve();
        });
      });
    }));
  }
  t.equal(answers.size, 400, 'every query answered');
  let intact = 0;
  for (const [name, response] of answers) if (response.includes(text(name))) intact++;
  t.equal(intact, 400, 'each kept answer still holds its own TXT data');
  const pools = new Set([...answers.values()].map((r) => r.buffer)).size;
  t.ok(pools <= 3, `${pools} pool Buffers for 400 answers of ~1 KB in at least 8 deliveries`);
});
