// The batched UDP listener (native addon, recvmmsg/sendmmsg) and node:dgram's, held to the
// same assertions over real sockets on 127.0.0.x and ::1; and the fallback when the addon is
// not there.
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { SocketAddress } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipv6Text, listenUdpBatched, listenUdpPreferBatched, loadBatchUdp, BatchUdpListener } from '../../src/net/batch-udp.js';
import { listenUdp } from '../../src/net/udp.js';
import { parseEndpoint, type Endpoint } from '../../src/net/endpoint.js';
import type { QueryHandler } from '../../src/net/udp.js';
import type { Transport } from '../../src/net/transport.js';
import { StartupError } from '../../src/net/bind-error.js';
import { buildQuery, T } from '../helpers/dns.js';
import { addonRequired } from '../helpers/batch-udp.js';

const load = loadBatchUdp();
if (load.addon === null) {
  // Without the addon only the dgram half runs; CI must build it (helpers/batch-udp.ts).
  if (addonRequired()) t.fail(`the batched UDP addon must be built in CI: ${load.reason}`);
  else t.comment(`batched UDP tests skipped: ${load.reason}`);
}

interface Listener extends Transport { draining: boolean; endpoint: Endpoint; close(): Promise<void> }
type Listen = (endpoint: Endpoint, handle: QueryHandler, onError: (err: Error) => void) => Promise<Listener>;

const implementations: [string, Listen | null][] = [
  ['node:dgram', listenUdp],
  ['batched', load.addon === null ? null : listenUdpBatched],
];

interface Seen { msg: Buffer; address: string; port: number }

/** A handler that records what it sees and answers each datagram with its bytes, QR set. */
function echo(seen: Seen[]): QueryHandler {
  return (msg, address, port, transport) => {
    seen.push({ msg: Buffer.from(msg), address, port });
    const answer = Buffer.from(msg);
    if (answer.length > 2) answer[2]! |= 0x80;
    transport.send(answer, address, port);
  };
}

function endpoint(text: string): Endpoint {
  const e = parseEndpoint(text, undefined);
  if ('error' in e) throw new Error(e.error);
  return e;
}

async function client(bindAddress: string): Promise<{ socket: Socket; port: number; replies: Buffer[]; wait(n: number, ms?: number): Promise<Buffer[]> }> {
  const socket = createSocket(bindAddress.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => socket.bind(0, bindAddress, r));
  // Clients share the server's thread here: their queues must hold a whole burst of answers.
  socket.setRecvBufferSize(4 * 1024 * 1024);
  const replies: Buffer[] = [];
  const waiters: (() => void)[] = [];
  socket.on('message', (m) => {
    replies.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const wait = async (n: number, ms = 3000): Promise<Buffer[]> => {
    const until = Date.now() + ms;
    while (replies.length < n && Date.now() < until) {
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return replies;
  };
  return { socket, port: socket.address().port, replies, wait };
}

/** Binds on a port the kernel picks: port 0 for the batched listener, a free one for dgram (it does not say which it got). */
async function listenOn(listen: Listen, host: string, handle: QueryHandler, errors: Error[] = []): Promise<{ listener: Listener; port: number }> {
  if (listen === listenUdpBatched) {
    const listener = await listenUdpBatched(endpoint(host.includes(':') ? `[${host}]:0` : `${host}:0`), handle, (e) => errors.push(e));
    return { listener, port: listener.port };
  }
  for (let attempt = 0; ; attempt++) {
    const probe = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((r) => probe.bind(0, host, r));
    const port = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    try {
      const listener = await listen(endpoint(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`), handle, (e) => errors.push(e));
      return { listener, port };
    } catch (err) {
      if (attempt > 5) throw err;
    }
  }
}

for (const [name, listen] of implementations) {
  t.test(name, { skip: listen === null ? load.reason ?? true : false }, async (t) => {
    const listenImpl = listen!;

    t.test('answers go back to each client address and port, IDs intact', async (t) => {
      const seen: Seen[] = [];
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', echo(seen));
      t.teardown(() => listener.close());
      const clients = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map(client));
      t.teardown(() => clients.forEach((c) => c.socket.close()));
      clients.forEach((c, i) => {
        for (let k = 0; k < 5; k++) c.socket.send(buildQuery(`c${i}-${k}.example`, T.A, { id: 1000 * (i + 1) + k }), port, '127.0.0.1');
      });
      for (const [i, c] of clients.entries()) {
        const replies = await c.wait(5);
        t.equal(replies.length, 5, `client ${i} got its 5 answers`);
        t.same(replies.map((r) => r.readUInt16BE(0)).sort(), [0, 1, 2, 3, 4].map((k) => 1000 * (i + 1) + k), `client ${i}: its own IDs`);
        t.ok(replies.every((r) => (r[2]! & 0x80) !== 0), 'answers (QR set)');
      }
      t.same(new Set(seen.map((s) => `${s.address}:${s.port}`)), new Set(clients.map((c, i) => `127.0.0.${i + 2}:${c.port}`)),
        'the handler saw each client\'s address as a string and its port');
      t.ok(seen.every((s) => typeof s.address === 'string'));
    });

    t.test('malformed, empty and oversized datagrams in one burst reach the handler as sent', async (t) => {
      const seen: Seen[] = [];
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', echo(seen));
      t.teardown(() => listener.close());
      const c = await client('127.0.0.5');
      t.teardown(() => c.socket.close());
      const big = Buffer.alloc(65507, 0x41);
      big.writeUInt16BE(0x1234, 0);
      const burst = [
        buildQuery('first.example', T.A, { id: 1 }),
        Buffer.from([0xde, 0xad, 0xbe]),
        Buffer.alloc(0),
        Buffer.concat([buildQuery('padded.example', T.A, { id: 2 }), Buffer.alloc(5000 - 31, 7)]),
        big,
        Buffer.from('not dns at all, just text'),
        buildQuery('last.example', T.AAAA, { id: 3 }),
      ];
      for (const m of burst) c.socket.send(m, port, '127.0.0.1');
      const replies = await c.wait(burst.length);
      t.equal(seen.length, burst.length, 'every datagram reached the handler');
      t.same(seen.map((s) => s.msg.toString('hex')), burst.map((m) => m.toString('hex')), 'byte for byte, in order');
      t.ok(seen.every((s) => s.address === '127.0.0.5' && s.port === c.port));
      t.equal(replies.length, burst.length, 'and each was answered, the 64 KB one too');
      t.same(replies.map((r) => r.length).sort((a, b) => a - b), burst.map((m) => m.length).sort((a, b) => a - b));
    });

    t.test('many datagrams at once', async (t) => {
      const seen: Seen[] = [];
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', echo(seen));
      t.teardown(() => listener.close());
      const clients = await Promise.all(['127.0.0.6', '127.0.0.7'].map(client));
      t.teardown(() => clients.forEach((c) => c.socket.close()));
      const n = 600;
      // Sent from one synchronous loop: the datagrams wait in the server's queue together.
      for (let k = 0; k < n; k++) clients[k % 2]!.socket.send(buildQuery(`m${k}.example`, T.A, { id: k }), port, '127.0.0.1');
      const ids = [...(await clients[0]!.wait(n / 2)), ...(await clients[1]!.wait(n / 2))].map((r) => r.readUInt16BE(0));
      t.equal(ids.length, n, 'every query answered');
      t.same(ids.sort((a, b) => a - b), Array.from({ length: n }, (_, k) => k), 'every ID once');
      t.ok(clients.every((c, i) => c.replies.every((r) => r.readUInt16BE(0) % 2 === i)), 'each answer to the client that asked');
      if (listener instanceof BatchUdpListener) {
        t.ok(listener.batches < n / 4, `read in batches (${listener.batches} batches for ${n} datagrams)`);
      }
    });

    t.test('answers given later (as forwarded ones are) still go out', async (t) => {
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', (msg, address, p, transport) => {
        setTimeout(() => transport.send(Buffer.from(msg), address, p), 20);
      });
      t.teardown(() => listener.close());
      const c = await client('127.0.0.8');
      t.teardown(() => c.socket.close());
      for (let k = 0; k < 10; k++) c.socket.send(buildQuery('later.example', T.A, { id: 500 + k }), port, '127.0.0.1');
      const replies = await c.wait(10);
      t.same(replies.map((r) => r.readUInt16BE(0)).sort(), Array.from({ length: 10 }, (_, k) => 500 + k));
    });

    t.test('a send that cannot go is an error for onError, not a crash', async (t) => {
      const errors: Error[] = [];
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', (msg, _address, _port, transport) => {
        transport.send(Buffer.alloc(65600), _address, _port);  // larger than any UDP datagram: EMSGSIZE
        transport.send(Buffer.from(msg), _address, _port);
      }, errors);
      t.teardown(() => listener.close());
      const c = await client('127.0.0.9');
      t.teardown(() => c.socket.close());
      c.socket.send(buildQuery('x.example', T.A, { id: 77 }), port, '127.0.0.1');
      const replies = await c.wait(1);
      t.equal(replies[0]?.readUInt16BE(0), 77, 'the good answer went out');
      const until = Date.now() + (listener instanceof BatchUdpListener ? 2000 : 100);
      while (errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // dgram drops a failed send without a word when no callback is given; the batched
      // listener tells onError.
      if (listener instanceof BatchUdpListener) t.match(errors[0]?.message, /EMSGSIZE/, 'the bad one was reported to onError');
    });

    t.test('IPv6 ::1', async (t) => {
      const seen: Seen[] = [];
      const { listener, port } = await listenOn(listenImpl, '::1', echo(seen));
      t.teardown(() => listener.close());
      const c = await client('::1');
      t.teardown(() => c.socket.close());
      c.socket.send(buildQuery('v6.example', T.AAAA, { id: 66 }), port, '::1');
      const replies = await c.wait(1);
      t.equal(replies[0]?.readUInt16BE(0), 66);
      t.same(seen.map((s) => [s.address, s.port]), [['::1', c.port]]);
      t.equal(listener.endpoint.family, 6);
    });

    t.test('graceful close: draining ignores new queries, queued answers still go, the port is free after', async (t) => {
      const seen: Seen[] = [];
      let closed: Promise<void> | null = null;
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', (msg, address, p, transport) => {
        seen.push({ msg, address, port: p });
        transport.send(Buffer.from(msg), address, p);
        listener.draining = true;  // shutdown begins while this query is being answered
        closed ??= listener.close();
      });
      const c = await client('127.0.0.10');
      t.teardown(() => c.socket.close());
      c.socket.send(buildQuery('one.example', T.A, { id: 1 }), port, '127.0.0.1');
      const replies = await c.wait(1);
      t.equal(replies[0]?.readUInt16BE(0), 1, 'the answer given before close went out');
      await closed;
      c.socket.send(buildQuery('two.example', T.A, { id: 2 }), port, '127.0.0.1');
      await c.wait(2, 300);
      t.equal(replies.length, 1, 'nothing answered after close');
      t.equal(seen.length, 1);
      const again = await listenImpl(endpoint(`127.0.0.1:${port}`), () => undefined, () => undefined);
      t.pass('the port could be bound again');
      await again.close();
    });

    t.test('a port in use is a StartupError with one line', async (t) => {
      const { listener, port } = await listenOn(listenImpl, '127.0.0.1', () => undefined);
      t.teardown(() => listener.close());
      const err = await listenImpl(endpoint(`127.0.0.1:${port}`), () => undefined, () => undefined).then(() => null, (e: unknown) => e);
      t.ok(err instanceof StartupError, 'a StartupError');
      t.match((err as Error).message, /^cannot listen on 127\.0\.0\.1:\d+ \(UDP\): the address is already in use[^\n]*$/);
    });
  });
}

t.test('batched: SO_REUSEPORT lets two sockets share a port', { skip: load.addon === null ? load.reason ?? true : false }, async (t) => {
  const a = await listenUdpBatched(endpoint('127.0.0.1:0'), () => undefined, () => undefined, { reusePort: true });
  t.teardown(() => a.close());
  const b = await listenUdpBatched(endpoint(`127.0.0.1:${a.port}`), () => undefined, () => undefined, { reusePort: true });
  t.teardown(() => b.close());
  t.equal(b.port, a.port);
});

t.test('batched: IPv6 addresses are written as dgram writes them', async (t) => {
  const samples = ['::', '::1', '1::', '2001:db8::1', '2001:db8:0:0:1:0:0:1', '2001:0:0:1:0:0:0:1', 'fe80::1:2:3:4',
    '::ffff:127.0.0.1', '::127.0.0.1', '::1:2', '1:2:3:4:5:6:7:8', '0:1:0:1:0:1:0:1', '1:0:0:2:0:0:0:3'];
  for (let i = 0; i < 200; i++) {
    // Random groups, zero-heavy so that runs of zeros of every length show up.
    samples.push(Array.from({ length: 8 }, () => (Math.random() < 0.5 ? '0' : Math.floor(Math.random() * 65536).toString(16))).join(':'));
  }
  for (const s of samples) {
    const canonical = new SocketAddress({ address: s, family: 'ipv6' }).address;  // Node's inet_ntop
    const bytes = Buffer.alloc(20);
    expandIpv6(canonical).copy(bytes, 4);
    t.equal(ipv6Text(bytes, 4), canonical, s);
  }
});

function expandIpv6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let groups = text;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [, a, b, c, d] = v4.map(Number) as [number, number, number, number, number];
    groups = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = groups.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const all = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

t.test('fallback: without the addon the wrapper says why and the listener is node:dgram', async (t) => {
  // With SINKHOLE_BATCH_UDP=off (the fallback run) that is the reason given, before any lookup.
  const off = process.env.SINKHOLE_BATCH_UDP === 'off';
  const absent = loadBatchUdp('sinkhole-batch-udp-that-is-not-installed');
  t.equal(absent.addon, null);
  t.match(absent.reason, off ? /turned off \(SINKHOLE_BATCH_UDP=off\)/ : /not built/);
  // What npm ci leaves where the compiler is missing: the package, but no compiled addon.
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-batch-udp-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'sinkhole-batch-udp', main: 'build/Release/batch_udp.node' }));
  const unbuilt = loadBatchUdp(dir);
  t.equal(unbuilt.addon, null);
  t.match(unbuilt.reason, off ? /turned off/ : /not built.*npm ci/);

  const seen: Seen[] = [];
  const port = await (async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const p = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  })();
  const chosen = await listenUdpPreferBatched(endpoint(`127.0.0.1:${port}`), echo(seen), () => undefined, unbuilt);
  t.teardown(() => chosen.listener.close());
  t.equal(chosen.batched, false);
  t.notOk(chosen.listener instanceof BatchUdpListener, 'a node:dgram listener');
  t.match(chosen.reason, /using node:dgram$/);
  const c = await client('127.0.0.11');
  t.teardown(() => c.socket.close());
  c.socket.send(buildQuery('fallback.example', T.A, { id: 9 }), port, '127.0.0.1');
  t.equal((await c.wait(1))[0]?.readUInt16BE(0), 9, 'and it answers');

  if (load.addon !== null) {
    const preferred = await listenUdpPreferBatched(endpoint('127.0.0.1:0'), echo([]), () => undefined);
    t.teardown(() => preferred.listener.close());
    t.equal(preferred.batched, true, 'with the addon built, the batched listener is chosen');
    t.equal(preferred.reason, null);
  }
});

t.test('batched: a link-local client is seen as dgram sees it (fe80::2%v0), and answered', {
  skip: load.addon === null ? load.reason ?? true : false,
}, async (t) => {
  // Link-local addresses need an interface: a veth pair in a network namespace of our own,
  // and a child process in it running the compiled listener (dist/, built by "npm test").
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const ns = `sbu-${process.pid}`;
  const setup = spawnSync('sh', ['-c', `ip netns add ${ns} && ip -n ${ns} link add v0 type veth peer name v1 && ` +
    `ip -n ${ns} link set lo up && ip -n ${ns} link set v0 up && ip -n ${ns} link set v1 up && ` +
    `ip -n ${ns} addr add fe80::1/64 dev v0 nodad && ip -n ${ns} addr add fe80::2/64 dev v0 nodad`], { encoding: 'utf8' });
  t.teardown(() => void spawnSync('ip', ['netns', 'del', ns]));
  if (setup.status !== 0 || !existsSync(join(root, 'dist', 'net', 'batch-udp.js'))) {
    const why = `needs root, iproute2 and a built dist/: ${setup.stderr.trim() || 'no dist/net/batch-udp.js'}`;
    if (process.env.CI) t.fail(why);
    else t.comment(`skipped: ${why}`);
    return;
  }
  const script = `
    import { listenUdpBatched } from ${JSON.stringify(join(root, 'dist', 'net', 'batch-udp.js'))};
    import { createSocket } from 'node:dgram';
    const seen = {};
    const listener = await listenUdpBatched({ host: 'fe80::1%v0', port: 0, family: 6, label: '[fe80::1%v0]:0' },
      (m, address, port, transport) => { seen.batched = address; transport.send(m, address, port); }, () => {});
    const d = createSocket('udp6');
    d.on('message', (m, r) => { seen.dgram = r.address; d.send(m, r.port, r.address); });
    await new Promise((r) => d.bind(0, 'fe80::1%v0', r));
    const c = createSocket('udp6');
    await new Promise((r) => c.bind(0, 'fe80::2%v0', r));
    const ask = (port) => new Promise((r) => { c.once('message', (m, info) => r(info.address)); c.send('hi', port, 'fe80::1%v0'); });
    seen.fromDgram = await ask(d.address().port);
    seen.fromBatched = await ask(listener.port);
    console.log(JSON.stringify(seen));
    c.close(); d.close(); await listener.close();`;
  const run = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10000 });
  t.equal(run.status, 0, run.stderr);
  const seen = JSON.parse(run.stdout.trim() || '{}') as Record<string, string>;
  t.equal(seen.dgram, 'fe80::2%v0', 'dgram writes the scope');
  t.equal(seen.batched, seen.dgram, 'the batched listener writes it the same way');
  t.equal(seen.fromBatched, 'fe80::1%v0', 'and its answer reached the client');
});

t.test('batched: queries that waited longer than maxWaitMs are dropped unread and counted; fresh ones answered', {
  skip: load.addon === null ? load.reason ?? true : false,
}, async (t) => {
  const seen: Seen[] = [];
  const listener = await listenUdpBatched(endpoint('127.0.0.1:0'), echo(seen), () => undefined, { maxWaitMs: 30 });
  t.teardown(() => listener.close());
  const c = await client('127.0.0.1');
  t.teardown(() => c.socket.close());
  // Sent by another process while this one is held (spawnSync) for 150 ms after the last
  // send: the queries wait in the receive queue and are too old when read.
  const queries = Array.from({ length: 20 }, (_, i) => buildQuery('stale.example', T.A, { id: i + 1 }).toString('hex'));
  const sender = `const s = require('node:dgram').createSocket('udp4'); let n = 0;
    for (const q of ${JSON.stringify(queries)}) s.send(Buffer.from(q, 'hex'), ${listener.port}, '127.0.0.1', () => {
      if (++n === ${queries.length}) setTimeout(() => process.exit(0), 150);
    });`;
  t.equal(spawnSync(process.execPath, ['-e', sender]).status, 0, 'the other process sent its queries');
  // Now a fresh query, which must be answered.
  c.socket.send(buildQuery('fresh.example', T.A, { id: 99 }), listener.port, '127.0.0.1');
  const replies = await c.wait(1);
  await new Promise((r) => setTimeout(r, 100));
  t.same(replies.map((m) => m.readUInt16BE(0)), [99], 'only the fresh query was answered');
  t.equal(seen.length, 1, 'the stale ones never reached the handler');
  t.equal(listener.stale, 20, 'and were counted');
});

t.test('batched: without maxWaitMs a query that waited is still answered', { skip: load.addon === null ? load.reason ?? true : false }, async (t) => {
  const seen: Seen[] = [];
  const listener = await listenUdpBatched(endpoint('127.0.0.1:0'), echo(seen), () => undefined);
  t.teardown(() => listener.close());
  const query = buildQuery('waited.example', T.A, { id: 7 }).toString('hex');
  // Sent by another process while this one is held for 150 ms, as above.
  t.equal(spawnSync(process.execPath, ['-e', `const s = require('node:dgram').createSocket('udp4');
    s.send(Buffer.from('${query}', 'hex'), ${listener.port}, '127.0.0.1', () => setTimeout(() => process.exit(0), 150));`]).status, 0);
  for (let i = 0; i < 40 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.same(seen.map((s) => s.msg.readUInt16BE(0)), [7], 'the query that waited reached the handler');
  t.equal(listener.stale, 0);
});
