// Every metric docs/limits.md names, read from /metrics over a real socket after the limit
// it counts was provoked over real sockets: rate and in-flight limits, rate-limiter
// evictions, TCP connection caps and deadlines, upstream UDP sockets, serve-stale, and list
// files that could not be read or were not UTF-8.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ask } from '../helpers/client.js';
import { buildQuery, T } from '../helpers/dns.js';
import { freePort, startSinkhole, type TestServer } from '../helpers/server.js';
import { startUpstream, type Handler, type TestUpstream } from '../helpers/upstream.js';

type Tap = { teardown(fn: () => unknown): void };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const answer: Handler = (q) => ({ answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] });

async function setup(t: Tap, args: string[], opts: { handler?: Handler; lists?: Record<string, string>; dir?: string } = {}):
  Promise<{ s: TestServer; upstream: TestUpstream; metrics: () => Promise<string>; http: (path: string, init?: RequestInit) => Promise<Response> }> {
  const upstream = await startUpstream(opts.handler ?? answer);
  const adminPort = await freePort();
  const s = await startSinkhole({
    upstream: upstream.address, lists: opts.lists ?? { 'm.txt': 'messenger.hotmail.com\n' },
    ...(opts.dir === undefined ? {} : { dir: opts.dir }),
    args: ['--admin', `127.0.0.1:${adminPort}`, ...args],
  });
  t.teardown(async () => {
    await s.close();
    await upstream.close();
  });
  const http = (path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${adminPort}${path}`, init);
  return { s, upstream, http, metrics: async () => (await http('/metrics')).text() };
}

/** The sum of the samples of `name` whose labels include `labels`; NaN when there is none. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = NaN;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (!Object.entries(labels).every(([k, v]) => have[k] === v)) continue;
    total = (Number.isNaN(total) ? 0 : total) + Number(m[3]);
  }
  return total;
}

/** Sends `msgs` from one UDP socket bound to `from`, without waiting for answers. */
async function spray(port: number, msgs: Buffer[], from = '127.0.0.1'): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, from, r));
  for (const m of msgs) await new Promise<void>((r) => socket.send(m, port, '127.0.0.1', () => r()));
  await sleep(300);
  socket.close();
}

t.test('rate and in-flight limits: sinkhole_ratelimited_total, sinkhole_inflight_queries, sinkhole_ratelimit_clients', async (t) => {
  const { s, metrics } = await setup(t, ['--rate-limit', '1', '--rate-burst', '5', '--network-rate-limit', '0', '--max-inflight-per-client', '2'], {
    handler: (q) => ({ delayMs: 600, answers: [{ name: q.rawName, type: T.A, ttl: 300, data: '192.0.2.7' }] }),
  });
  const before = await metrics();
  t.equal(metric(before, 'sinkhole_ratelimited_total', { reason: 'rate', action: 'refused' }), 0, 'nothing limited yet');
  // 127.0.0.2: 5 forwarded queries within its burst, only 2 may wait for the (slow) upstream.
  const slow = spray(s.port, Array.from({ length: 5 }, (_, i) => buildQuery(`n${i}.slow.example`, T.A)), '127.0.0.2');
  await sleep(150);
  const during = await metrics();
  t.equal(metric(during, 'sinkhole_inflight_queries'), 2, 'two queries wait for the upstream');
  t.equal(metric(during, 'sinkhole_ratelimited_total', { reason: 'inflight', action: 'refused' }), 3, 'three over the in-flight limit, REFUSED');
  await slow;
  // 127.0.0.3: 80 queries at once at 1 q/s, burst 5: 5 answered, 40 REFUSED (20/s, burst 40), the rest dropped.
  await spray(s.port, Array.from({ length: 80 }, () => buildQuery('messenger.hotmail.com', T.A)), '127.0.0.3');
  await sleep(700);
  const after = await metrics();
  t.ok(metric(after, 'sinkhole_ratelimited_total', { reason: 'rate', action: 'refused' }) >= 40, 'over the rate: REFUSED');
  t.ok(metric(after, 'sinkhole_ratelimited_total', { reason: 'rate', action: 'dropped' }) >= 30, 'past the refusals: dropped');
  t.equal(metric(after, 'sinkhole_ratelimited_total', { reason: 'inflight', action: 'dropped' }), 0, 'in flight, dropped: present');
  t.equal(metric(after, 'sinkhole_inflight_queries'), 0, 'none waiting once answered');
  t.equal(metric(after, 'sinkhole_ratelimit_clients'), 2, 'two client addresses remembered');
  t.equal(metric(after, 'sinkhole_ratelimit_evictions_total'), 0, 'no evictions among two');
});

t.test('12,000 distinct client addresses: sinkhole_ratelimit_evictions_total moves, sinkhole_ratelimit_clients is bounded', async (t) => {
  const { s, metrics } = await setup(t, ['--rate-limit', '200', '--network-rate-limit', '0']);
  const query = buildQuery('messenger.hotmail.com', T.A);
  const addresses: string[] = [];
  for (let i = 0; addresses.length < 12_000; i++) if ((i & 255) !== 0 && (i & 255) !== 255) addresses.push(`127.9.${i >> 8}.${i & 255}`);
  // Each from its own socket bound to its own loopback address (all of 127/8 is local on Linux).
  // 100 at a time, then a pause: the server (in this process) reads them before the socket's
  // receive buffer overflows.
  for (let at = 0; at < addresses.length; at += 100) {
    await sleep(10);
    await Promise.all(addresses.slice(at, at + 100).map(async (from) => {
      const socket = createSocket('udp4');
      await new Promise<void>((r) => socket.bind(0, from, r));
      await new Promise<void>((r) => socket.send(query, s.port, '127.0.0.1', () => r()));
      socket.close();
    }));
  }
  await sleep(300);
  const text = await metrics();
  const clients = metric(text, 'sinkhole_ratelimit_clients');
  const evictions = metric(text, 'sinkhole_ratelimit_evictions_total');
  // 12,000 addresses in 16,384 sets of 4 (random hash): a few dozen sets overflow.
  t.ok(evictions > 0, `${evictions} entries made room for newer addresses`);
  t.ok(clients > 11_000 && clients <= 12_000 && clients + evictions >= 11_990, `${clients} addresses remembered, ${evictions} evicted`);
});

/** A TCP connection to the server; resolves once connected. */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
  });
}
const closed = (socket: Socket) => new Promise<void>((r) => (socket.closed ? r() : socket.once('close', () => r())));

t.test('TCP: sinkhole_tcp_connections and _accepted/_refused/_closed_total by reason', async (t) => {
  const { s, metrics } = await setup(t, ['--tcp-max-per-client', '2', '--tcp-idle-timeout', '400']);
  const listen = `tcp://127.0.0.1:${s.port}`;
  const closedBy = (text: string, reason: string) => metric(text, 'sinkhole_tcp_connections_closed_total', { listen, reason });

  // Idle: a connection that sends nothing is closed after the idle timeout.
  const idle = await open(s.port);
  await closed(idle);
  let text = await metrics();
  t.equal(closedBy(text, 'idle'), 1, 'closed idle');

  // At the per-client cap of 2 the connection idle the longest makes room (RFC 7766 6.2.3).
  const first = await open(s.port);
  await open(s.port);
  await sleep(50);
  const third = await open(s.port);
  await closed(first);
  text = await metrics();
  t.equal(closedBy(text, 'evicted'), 1, 'the oldest idle connection evicted');
  await Promise.all([closed(third), sleep(0)]);

  // Two connections each with a message under way (not idle): a third is refused; the two are
  // closed when their message is not whole within the 2 s deadline (slowloris).
  await sleep(600);
  const slow = [await open(s.port), await open(s.port)];
  for (const c of slow) c.write(Buffer.from([0]));
  await sleep(150);
  text = await metrics();
  t.equal(metric(text, 'sinkhole_tcp_connections', { listen }), 2, 'two connections open');
  const refused = await open(s.port);
  await closed(refused);
  await Promise.all(slow.map(closed));
  text = await metrics();
  t.equal(metric(text, 'sinkhole_tcp_connections_refused_total', { listen }), 1, 'the third refused');
  t.equal(closedBy(text, 'message_deadline'), 2, 'both closed at the message deadline');
  t.equal(closedBy(text, 'unanswered'), 0, 'unanswered: present (provoking it takes 6 s of a lost answer)');
  t.equal(metric(text, 'sinkhole_tcp_connections_accepted_total', { listen }), 6, 'accepted: all but the refused one');
  t.equal(metric(text, 'sinkhole_tcp_connections', { listen }), 0, 'none open now');
  t.match(text, /^# TYPE sinkhole_tcp_connections_closed_total counter$/m);
});

t.test('upstream UDP sockets and serve-stale: sinkhole_upstream_udp_*, sinkhole_stale_answers_total', async (t) => {
  let down = false;
  const { s, metrics } = await setup(t, ['--upstream-timeout', '100'], {
    handler: (q) => (down ? { drop: true } : { delayMs: q.name.startsWith('slow') ? 400 : 0, answers: [{ name: q.rawName, type: T.A, ttl: 1, data: '192.0.2.8' }] }),
  });
  t.equal((await ask(s.port, 'known.example.org', T.A)).answers[0]?.text, '192.0.2.8', 'forwarded');
  const slow = ask(s.port, 'slow.example.org', T.A);
  await sleep(150);
  let text = await metrics();
  // Past --upstream-timeout the query is sent again, from a socket of its own.
  const open = metric(text, 'sinkhole_upstream_udp_sockets');
  t.ok(open >= 1 && open <= 2, `${open} sockets open while a query waits`);
  await slow;
  text = await metrics();
  t.equal(metric(text, 'sinkhole_upstream_udp_sockets'), 0, 'closed once answered');
  t.ok(metric(text, 'sinkhole_upstream_udp_sockets_opened_total') >= 2, 'a socket per query');
  t.equal(metric(text, 'sinkhole_upstream_udp_shared_total'), 0, 'none shared below the cap');
  t.equal(metric(text, 'sinkhole_stale_answers_total'), 0, 'no stale answers yet');

  await sleep(1200);
  down = true;
  const stale = await ask(s.port, 'known.example.org', T.A);
  t.equal(stale.answers[0]?.ttl, 30, 'answered stale');
  text = await metrics();
  t.equal(metric(text, 'sinkhole_stale_answers_total'), 1, 'counted');
});

t.test('list files: sinkhole_blocklist_files_failed and sinkhole_blocklist_lines_latin1, at start and on reload', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'limits-metrics-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.txt'), 'messenger.hotmail.com\n');
  writeFileSync(join(dir, 'latin.txt'), Buffer.concat([Buffer.from('# M'), Buffer.from([0xfc]), Buffer.from('ller\nchat.example\n')]));
  mkdirSync(join(dir, 'folder.txt'));
  const { metrics, http } = await setup(t, [], { dir });
  let text = await metrics();
  t.equal(metric(text, 'sinkhole_blocklist_files_failed'), 1, 'a directory named *.txt');
  t.equal(metric(text, 'sinkhole_blocklist_lines_latin1'), 1, 'one Latin-1 line');

  const fifo = spawnSync('mkfifo', [join(dir, 'pipe.txt')]);
  t.equal(fifo.status, 0, 'mkfifo');
  writeFileSync(join(dir, 'more.txt'), Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9]), Buffer.from('\n# na'), Buffer.from([0xef]), Buffer.from('ve\nx.example\n')]));
  t.equal((await http('/reload', { method: 'POST' })).status, 200, 'reloaded');
  text = await metrics();
  t.equal(metric(text, 'sinkhole_blocklist_files_failed'), 2, 'and a FIFO');
  t.equal(metric(text, 'sinkhole_blocklist_lines_latin1'), 3, 'three Latin-1 lines in two files');
});
