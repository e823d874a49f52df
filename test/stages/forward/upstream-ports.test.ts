// RFC 5452 at an in-process upstream: forwarded queries leave from a fresh random source port
// each (not from a handful of long-lived sockets) with random IDs, open sockets are capped,
// and every socket is closed once its query is done.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../../src/net/endpoint.js';
import { DEFAULT_SPARE_SOCKETS, MIN_SPARE_SOCKETS, UdpUpstreamClient } from '../../../src/stages/forward/transports/udp.js';
import { loadBatchUdp } from '../../../src/net/batch-udp.js';
import { mustKey } from '../../../src/wire/names.js';
import { buildQuery, decode, T } from '../../helpers/dns.js';
import { serverWithUpstream } from '../../helpers/server.js';
import { startForgingUpstream, startUpstream } from '../../helpers/upstream.js';
import { addonRequired } from '../../helpers/batch-udp.js';

/** Sockets this process has open (Linux). */
function openSockets(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

/** Sends `msgs` from one socket, `window` at a time; resolves with the replies by ID. */
async function askMany(port: number, msgs: Buffer[], window = 100, timeoutMs = 20_000): Promise<Map<number, Buffer>> {
  const socket = createSocket('udp4');
  const replies = new Map<number, Buffer>();
  let wake: (() => void) | null = null;
  socket.on('message', (msg) => {
    replies.set(msg.readUInt16BE(0), msg);
    wake?.();
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const until = Date.now() + timeoutMs;
  let sent = 0;
  while (replies.size < msgs.length && Date.now() < until) {
    while (sent < msgs.length && sent - replies.size < window) socket.send(msgs[sent++]!, port, '127.0.0.1');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 50);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });
  }
  socket.close();
  return replies;
}

t.test('5,000 forwarded queries leave from at least 4,000 distinct source ports, with random IDs', async (t) => {
  const { s, upstream } = await serverWithUpstream(t, {
    handler: (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.44' }] }),
  });
  const socketsBefore = openSockets();
  const count = 5000;
  const msgs = Array.from({ length: count }, (_, i) => buildQuery(`n${i}.ports.example`, T.A, { id: i }));
  const started = Date.now();
  const replies = await askMany(s.port, msgs);
  const ms = Date.now() - started;
  t.equal(replies.size, count, `all ${count} answered (${ms} ms)`);
  t.equal(decode(replies.get(123)!).answers[0]?.text, '192.0.2.44', 'with the upstream\'s answer');
  const udp = upstream.queries.filter((q) => !q.tcp);
  // At least once: on a busy machine the forwarder may ask again after its retransmission timeout.
  t.ok(udp.length >= count && udp.length < count * 1.2, `each forwarded over UDP (${udp.length} upstream queries)`);
  const ports = new Set(udp.map((q) => q.from.port));
  t.ok(ports.size >= 4000, `${ports.size} distinct source ports (target >= 4,000)`);
  const ids = new Set(udp.map((q) => q.id));
  // 5,000 draws of 16 random bits give ~4,815 distinct values; a counter or a small set far fewer or all.
  t.ok(ids.size >= 4600 && ids.size < udp.length, `${ids.size} distinct IDs: random, not a counter`);
  let steps = 0;
  for (let i = 1; i < udp.length; i++) if (((udp[i]!.id - udp[i - 1]!.id) & 0xffff) === 1) steps++;
  t.ok(steps < 20, `consecutive IDs rarely follow each other (${steps} times)`);
  // What stays open is the pool of spares, bound ahead for the next queries (at most DEFAULT_SPARE_SOCKETS).
  t.ok(openSockets() <= socketsBefore + 2 + DEFAULT_SPARE_SOCKETS, `no query's socket left open (${socketsBefore} before, ${openSockets()} after)`);
});

t.test('the addon\'s sockets where it is built (node:dgram with SINKHOLE_BATCH_UDP=off); both: one random port per query, forged datagrams ignored', async (t) => {
  const load = loadBatchUdp();
  const expected = load.addon !== null ? 'addon' : 'dgram';
  if (load.addon === null && addonRequired()) t.fail(`the addon must be built in CI: ${load.reason}`);
  const kinds = load.addon === null ? [null] : [undefined, null];
  for (const native of kinds) {
    // A live upstream that also forges (NXDOMAIN from another port, the real answer 20 ms later).
    const forging = await startForgingUpstream();
    const { seen } = forging;
    const client = new UdpUpstreamClient((err) => t.fail(err.message), native === null ? { native: null } : {});
    const kind = native === null ? 'dgram' : expected;
    t.equal(client.sockets, kind, `sockets: ${kind}`);
    const upstream = forging.endpoint;
    const answers: (Buffer | null)[] = [];
    const started = Date.now();
    for (let i = 0; i < 40; i++) {
      const name = `k${i}.kind.example`;
      answers.push(await new Promise<Buffer | null>((resolve) => {
        client.send(upstream, buildQuery(name, T.A, { id: 7 }), mustKey(name), T.A, 1, Date.now() + 2000, resolve);
      }));
    }
    t.equal(answers.filter((a) => a !== null).length, 40, `${kind}: 40 answered (${Date.now() - started} ms)`);
    t.equal(answers.filter((a) => a !== null && decode(a).rcode === 0).length, 40, `${kind}: each with the real answer, none with the forged one`);
    t.ok(seen.size >= 38, `${kind}: ${seen.size} source ports for 40 queries`);
    t.equal(client.openSockets, 0, `${kind}: no socket in use afterwards`);
    client.close();
    forging.close();
  }
});

t.test('spare sockets: ready ahead off the query path, put back after each turn; addon sockets recycled onto a new random port per query', async (t) => {
  const upstream = await startUpstream((q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.47' }] }));
  t.teardown(() => upstream.close());
  const socketsBefore = openSockets();
  const client = new UdpUpstreamClient((err) => t.fail(err.message));
  t.teardown(() => client.close());
  const endpoint = parseEndpoint(upstream.address, undefined) as Endpoint;
  const query = (name: string): Promise<Buffer | null> => new Promise((resolve) => {
    client.send(endpoint, buildQuery(name, T.A), mustKey(name), T.A, 1, Date.now() + 3000, resolve);
  });
  const waitFor = async (what: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  t.equal(client.spareSockets, 0, 'nothing is opened before the first query');
  t.ok(await query('first.pool.example'), 'answered');
  t.equal(client.counters.openedOnDemand, 1, 'the first query opened its own socket');
  // On the addon the first query's own socket comes back among the spares (recycled), and the
  // refill, which counted it as one to come, opened one fewer.
  const recycles = client.sockets === 'addon' ? 1 : 0;
  await waitFor(() => client.spareSockets >= MIN_SPARE_SOCKETS && client.counters.socketsRecycled >= recycles);
  t.equal(client.spareSockets, MIN_SPARE_SOCKETS, `${MIN_SPARE_SOCKETS} spares after that turn`);
  t.equal(client.counters.socketsRecycled, recycles, `${client.sockets}: ${recycles} socket recycled`);
  t.equal(client.counters.socketsOpened, 1 + MIN_SPARE_SOCKETS - recycles, `${client.counters.socketsOpened} sockets opened in all`);
  const opened = client.counters.socketsOpened;
  for (let i = 0; i < 30; i++) t.ok(await query(`s${i}.pool.example`), `s${i} answered`);
  t.equal(client.counters.openedOnDemand, 1, 'one query at a time: each found a spare ready');
  if (client.sockets === 'addon') {
    t.equal(client.counters.socketsRecycled, 31, 'addon: each query\'s socket recycled');
    t.equal(client.counters.socketsOpened, opened, 'addon: no socket opened for them');
  }

  // A burst takes more than the spares: the next turn puts back as many as it took.
  const burst = async (tag: string): Promise<number> => (await Promise.all(Array.from({ length: 100 }, (_, i) => query(`${tag}${i}.pool.example`)))).filter(Boolean).length;
  t.equal(await burst('a'), 100, 'a burst of 100 answered');
  const onDemand = client.counters.openedOnDemand;
  t.ok(onDemand <= 1 + 100 - MIN_SPARE_SOCKETS, `${onDemand - 1} of the burst opened their own (the rest took spares)`);
  await waitFor(() => client.spareSockets >= 100);
  t.ok(client.spareSockets >= 100 && client.spareSockets <= client.spareMax, `${client.spareSockets} spares after the burst's turn`);
  t.equal(await burst('b'), 100, 'a second burst answered');
  t.equal(client.counters.openedOnDemand, onDemand, 'the second burst found all its sockets ready');

  const ports = upstream.queries.map((q) => q.from.port);
  // Random ports may repeat once a socket is closed or recycled (~1 repeat expected among 231
  // draws from ~28,000); a recycled socket that kept its port would repeat it 30 times above.
  t.ok(new Set(ports).size >= ports.length - 10, `${new Set(ports).size} distinct source ports for ${ports.length} queries`);
  t.equal(client.openSockets, 0, 'no socket in use once all are answered');
  client.close();
  t.ok(openSockets() <= socketsBefore + 2, `close() closes the spares too (${socketsBefore} before, ${openSockets()} after)`);
});

t.test('open sockets are capped: past the cap queries share the open ones, and all are answered', async (t) => {
  const upstream = await startUpstream((q) => ({ delayMs: 150, answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.45' }] }));
  t.teardown(() => upstream.close());
  const client = new UdpUpstreamClient((err) => t.fail(err.message), { maxSockets: 8 });
  t.teardown(() => client.close());
  const endpoint = parseEndpoint(upstream.address, undefined) as Endpoint;
  let maxOpen = 0;
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => new Promise<Buffer | null>((resolve) => {
    const name = `c${i}.cap.example`;
    client.send(endpoint, buildQuery(name, T.A), mustKey(name), T.A, 1, Date.now() + 3000, resolve);
    maxOpen = Math.max(maxOpen, client.openSockets);
  })));
  t.equal(maxOpen, 8, 'never more than 8 sockets open');
  t.equal(answers.filter((a) => a !== null && decode(a).answers[0]?.text === '192.0.2.45').length, 50, 'all 50 answered');
  t.equal(client.counters.shared, 42, '42 queries shared an open socket');
  t.equal(new Set(upstream.queries.map((q) => q.from.port)).size, 8, 'from 8 ports');
  t.equal(client.openSockets, 0, 'all closed afterwards');
});

t.test('sockets of cancelled and expired queries are closed; a spoofed answer from another port is ignored', async (t) => {
  let spoofer: ReturnType<typeof createSocket> | null = null;
  const upstream = await startUpstream((q) => {
    if (q.name.startsWith('spoofed')) {
      // Answer first from another port with the right ID and question: must be ignored.
      const forged = Buffer.from(q.msg);
      forged[2]! |= 0x80;
      spoofer ??= createSocket('udp4');
      spoofer.send(forged, q.from.port, '127.0.0.1');
      return { delayMs: 100, answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.46' }] };
    }
    return { drop: true };
  });
  t.teardown(async () => {
    spoofer?.close();
    await upstream.close();
  });
  const client = new UdpUpstreamClient((err) => t.fail(err.message));
  t.teardown(() => client.close());
  const endpoint = parseEndpoint(upstream.address, undefined) as Endpoint;
  const expired = new Promise<Buffer | null>((resolve) => {
    client.send(endpoint, buildQuery('dropped.example', T.A), mustKey('dropped.example'), T.A, 1, Date.now() + 200, resolve);
  });
  const handle = client.send(endpoint, buildQuery('cancelled.example', T.A), mustKey('cancelled.example'), T.A, 1, Date.now() + 5000,
    () => t.fail('a cancelled query is not answered'));
  t.equal(client.openSockets, 2, 'two sockets open');
  client.cancel(handle);
  t.equal(client.openSockets, 1, 'the cancelled query\'s socket is closed at once');
  t.equal(await expired, null, 'the dropped query expires');
  t.equal(client.openSockets, 0, 'and its socket is closed');
  const real = await new Promise<Buffer | null>((resolve) => {
    client.send(endpoint, buildQuery('spoofed.example', T.A), mustKey('spoofed.example'), T.A, 1, Date.now() + 2000, resolve);
  });
  t.equal(real && decode(real).answers[0]?.text, '192.0.2.46', 'the real answer, not the forged one from another port');
});

t.test('out of file descriptors (ulimit -n 64): queries share the open sockets and are answered, not left to their deadline', async (t) => {
  const dist = JSON.stringify(join(import.meta.dirname, '..', '..', '..', 'dist'));
  const script = `
    import { createSocket } from 'node:dgram';
    const { UdpUpstreamClient } = await import(${dist} + '/stages/forward/transports/udp.js');
    const { mustKey } = await import(${dist} + '/wire/names.js');
    const responder = createSocket('udp4');
    responder.on('message', (m, r) => { m[2] |= 0x80; setTimeout(() => responder.send(m, r.port, r.address), 50); });
    await new Promise((r) => responder.bind(0, '127.0.0.1', r));
    const upstream = { host: '127.0.0.1', port: responder.address().port, family: 4, label: 'x' };
    const errors = [];
    const client = new UdpUpstreamClient((e) => errors.push(e.code));
    const query = (name) => Buffer.concat([Buffer.from([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => new Promise((resolve) => {
      const name = 'q' + i + '.example';
      const ask = (tries) => client.send(upstream, query(name), mustKey(name), 1, 1, Date.now() + 3000,
        (r) => (r === null && tries < 3 ? ask(tries + 1) : resolve(r !== null)));
      ask(1);
    })));
    console.log(JSON.stringify({ answered: results.filter(Boolean).length, ms: Date.now() - started, shared: client.counters.shared, errors: [...new Set(errors)] }));
    process.exit(0);`;
  const child = spawnSync('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { encoding: 'utf8', timeout: 20_000 });
  t.equal(child.status, 0, child.stderr);
  const r = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}') as { answered: number; ms: number; shared: number; errors: string[] };
  t.equal(r.answered, 200, 'all 200 answered');
  t.ok(r.ms < 2000, `within ${r.ms} ms: failed binds did not wait for the 3 s deadline`);
  t.ok(r.shared > 0, `${r.shared} queries shared an open socket`);
  t.same(r.errors, ['EMFILE'], 'the error was told (folded)');
});
