// --upstream-port-reuse N: a random source port carries up to N queries (each with its own
// random ID), up to LIVE_PORTS ports per upstream at once, none taking a new query after
// PORT_LIFE_MS, all closed once nothing is in flight. Both kinds of socket (the addon's and
// node:dgram's), against a real in-process upstream; and the option through the server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseEndpoint, type Endpoint } from '../../../src/net/endpoint.js';
import { LIVE_PORTS, PORT_LIFE_MS, UdpUpstreamClient } from '../../../src/stages/forward/transports/udp.js';
import { loadBatchUdp } from '../../../src/net/batch-udp.js';
import { mustKey } from '../../../src/wire/names.js';
import { buildQuery, decode, T } from '../../helpers/dns.js';
import { closedUdpEndpoint, startForgingUpstream, startUpstream } from '../../helpers/upstream.js';
import { addonRequired } from '../../helpers/batch-udp.js';
import { startSinkhole } from '../../helpers/server.js';
import { ask as askServer } from '../../helpers/client.js';

const load = loadBatchUdp();
if (load.addon === null && addonRequired()) t.fail(`the addon must be built in CI: ${load.reason}`);
/** undefined: the addon's sockets where built; null: node:dgram. */
const kinds: (null | undefined)[] = load.addon === null ? [null] : [undefined, null];

function ask(client: UdpUpstreamClient, endpoint: Endpoint, name: string, ms = 3000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    client.send(endpoint, buildQuery(name, T.A), mustKey(name), T.A, 1, Date.now() + ms, resolve);
  });
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `count` queries at once to a port where nothing listens: each one's failure reason (or 'answered'), and how long all took. */
async function askClosedPort(client: UdpUpstreamClient, count: number, tag: string): Promise<{ whys: (string | undefined)[]; ms: number }> {
  const dead = await closedUdpEndpoint();
  const started = Date.now();
  const whys = await Promise.all(Array.from({ length: count }, (_, i) => new Promise<string | undefined>((resolve) => {
    const name = `${tag}${i}.dead.example`;
    client.send(dead, buildQuery(name, T.A), mustKey(name), T.A, 1, Date.now() + 3000, (r, why) => resolve(r === null ? why : 'answered'));
  })));
  return { whys, ms: Date.now() - started };
}

/** Waits until `what` holds or `ms` pass (the sweep runs every 25 ms, later on a loaded machine). */
async function waitFor(what: () => boolean, ms = 2000): Promise<void> {
  for (const until = Date.now() + ms; !what() && Date.now() < until;) await wait(10);
}

for (const native of kinds) {
  const kind = native === null ? 'dgram' : 'addon';

  t.test(`${kind}: bursts share ports, at most N queries per port, IDs distinct per port, every answer right`, async (t) => {
    const arrivals: { port: number; id: number; at: number }[] = [];
    const upstream = await startUpstream((q) => {
      arrivals.push({ port: q.from.port, id: q.id, at: Date.now() });
      return { delayMs: 5, answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.61' }] };
    });
    t.teardown(() => upstream.close());
    const client = new UdpUpstreamClient((err) => t.fail(err.message), { portReuse: 8, ...(native === null ? { native: null } : {}) });
    t.teardown(() => client.close());
    t.equal(client.sockets, kind);
    const endpoint = parseEndpoint(upstream.address, undefined) as Endpoint;
    let answered = 0;
    for (let burst = 0; burst < 4; burst++) {
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => ask(client, endpoint, `r${burst}-${i}.reuse.example`)));
      answered += replies.filter((r, i) => r !== null && decode(r).answers[0]?.text === '192.0.2.61' &&
        decode(r).question?.name === `r${burst}-${i}.reuse.example`).length;
    }
    t.equal(answered, 400, 'all 400 answered, each with its own question');
    const perPort = new Map<number, number>();
    for (const a of arrivals) perPort.set(a.port, (perPort.get(a.port) ?? 0) + 1);
    t.equal(arrivals.length, 400, 'one upstream query each');
    t.ok(perPort.size >= 400 / 8 && perPort.size <= 400 / 2, `${perPort.size} source ports for 400 queries: shared, not one per query`);
    t.ok(Math.max(...perPort.values()) <= 8, `no port carried more than 8 (most: ${Math.max(...perPort.values())})`);
    // In a burst every port's queries are in flight together: their IDs must differ.
    const idsPerPort = new Map<number, Set<number>>();
    for (const a of arrivals) {
      const ids = idsPerPort.get(a.port) ?? new Set<number>();
      ids.add(a.id);
      idsPerPort.set(a.port, ids);
    }
    t.ok([...idsPerPort].every(([port, ids]) => ids.size === perPort.get(port)), 'a port\'s queries carry distinct IDs');
    t.ok(client.openSockets <= LIVE_PORTS, `${client.openSockets} ports open once answered (at most ${LIVE_PORTS}, the live ones)`);
    await waitFor(() => client.openSockets === 0);
    t.equal(client.openSockets, 0, 'with nothing in flight the live ports are closed by the next sweep');
  });

  t.test(`${kind}: a port takes no new query after ${PORT_LIFE_MS} ms, and one query at a time keeps no port open`, async (t) => {
    const arrivals: { port: number; at: number }[] = [];
    const upstream = await startUpstream((q) => {
      arrivals.push({ port: q.from.port, at: Date.now() });
      return { delayMs: 150, answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.62' }] };
    });
    t.teardown(() => upstream.close());
    const client = new UdpUpstreamClient((err) => t.fail(err.message), { portReuse: 256, ...(native === null ? { native: null } : {}) });
    t.teardown(() => client.close());
    const endpoint = parseEndpoint(upstream.address, undefined) as Endpoint;
    // 30 queries every 50 ms for 2.5 s: always some in flight, so the live ports stay open
    // and only their age retires them.
    const replies: Promise<Buffer | null>[] = [];
    for (let i = 0; i < 50; i++) {
      for (let j = 0; j < 30; j++) replies.push(ask(client, endpoint, `l${i}-${j}.life.example`));
      await wait(50);
    }
    t.equal((await Promise.all(replies)).filter((r) => r !== null).length, 1500, 'all 1,500 answered');
    const spans = new Map<number, { first: number; last: number; count: number }>();
    for (const a of arrivals) {
      const s = spans.get(a.port);
      if (s === undefined) spans.set(a.port, { first: a.at, last: a.at, count: 1 });
      else {
        s.last = a.at;
        s.count++;
      }
    }
    const longest = Math.max(...[...spans.values()].map((s) => s.last - s.first));
    // The sweep (every 25 ms) retires them; a loaded machine may run it late.
    t.ok(longest <= PORT_LIFE_MS + 500, `the longest-used port took queries over ${longest} ms`);
    t.ok(longest >= PORT_LIFE_MS / 2, `ports were reused across turns (${longest} ms)`);
    t.ok(spans.size >= 1500 / 256 && spans.size < 1500 / 4, `${spans.size} ports for 1,500 queries`);
    await waitFor(() => client.openSockets === 0);
    t.equal(client.openSockets, 0, 'all closed after the load');

    // One query at a time, apart: each finds no live port (closed by the sweep once idle) and takes a fresh one.
    const before = arrivals.length;
    for (let i = 0; i < 5; i++) {
      t.ok(await ask(client, endpoint, `single${i}.life.example`), `single ${i} answered`);
      await waitFor(() => client.openSockets === 0);
    }
    const singles = arrivals.slice(before).map((a) => a.port);
    t.equal(new Set(singles).size, 5, `queries one after another, each once the last was closed, leave from 5 different ports (${singles.join(', ')})`);
  });

  t.test(`${kind}: forged answers are still ignored, and an unreachable upstream fails the port's queries at once`, async (t) => {
    const forging = await startForgingUpstream();
    t.teardown(() => forging.close());
    const client = new UdpUpstreamClient((err) => t.fail(err.message), { portReuse: 16, ...(native === null ? { native: null } : {}) });
    t.teardown(() => client.close());
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => ask(client, forging.endpoint, `f${i}.forged.example`)));
    t.equal(replies.filter((r) => r !== null && decode(r).rcode === 0).length, 60, 'all 60 with the real answer, none with the forged NXDOMAIN');

    // A port nobody listens on: ICMP port unreachable fails each try with the reason, at once.
    const { whys, ms } = await askClosedPort(client, 40, 'd');
    t.ok(ms < 1500, `all 40 failed in ${ms} ms, not at their deadline`);
    t.equal(whys.filter((w) => w !== undefined && /unreachable/.test(w)).length, 40, `each with the reason (${whys[0]})`);
    await waitFor(() => client.openSockets === 0);
    t.equal(client.openSockets, 0, 'no socket left open');
  });
}

t.test('at the socket cap (queries sharing ports without reuse), an unreachable upstream fails every query at once', async (t) => {
  // On loopback the ICMP error comes back within the send: the next send on the same
  // connected socket is the one told (ECONNREFUSED); the queries before it must fail too.
  const client = new UdpUpstreamClient((err) => t.fail(err.message), { maxSockets: 4 });
  t.teardown(() => client.close());
  // The client's sockets and sweep do not keep a process alive: this does, until the deadline.
  const keepAlive = setTimeout(() => undefined, 5000);
  t.teardown(() => clearTimeout(keepAlive));
  const { whys, ms } = await askClosedPort(client, 30, 'c');
  t.ok(ms < 1500, `all 30 failed in ${ms} ms, not at their deadline`);
  t.equal(whys.filter((w) => w !== undefined && /unreachable/.test(w)).length, 30, 'each with the reason');
  t.ok(client.counters.shared > 0, `${client.counters.shared} shared a socket`);
});

t.test('--upstream-port-reuse through the server: forwarded queries share ports; out of range stops startup with the range', async (t) => {
  const upstream = await startUpstream((q) => ({ delayMs: 5, answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.63' }] }));
  t.teardown(() => upstream.close());
  const s = await startSinkhole({ upstream: upstream.address, lists: {}, args: ['--upstream-port-reuse', '32'] });
  t.teardown(() => s.close());
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => askServer(s.port, `s${i}.server-reuse.example`, T.A)));
  t.equal(answers.filter((a) => a.answers[0]?.text === '192.0.2.63').length, 200, 'all 200 answered through the server');
  const ports = new Set(upstream.queries.filter((q) => !q.tcp).map((q) => q.from.port));
  t.ok(ports.size < 100, `${ports.size} source ports for ${upstream.queries.length} upstream queries`);
  for (const bad of ['0', '257', 'x']) {
    await t.rejects(startSinkhole({ upstream: upstream.address, lists: {}, args: ['--upstream-port-reuse', bad] }),
      /upstream-port-reuse.*1.*256/, `--upstream-port-reuse ${bad} is refused, naming the range`);
  }
});

t.test('a config reload changing upstream-port-reuse builds the forwarder anew: from one port per query to shared ports', async (t) => {
  const upstream = await startUpstream((q) => ({ delayMs: 5, answers: [{ name: q.rawName, type: T.A, ttl: 60, data: '192.0.2.64' }] }));
  t.teardown(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-port-reuse-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'sinkhole.conf');
  writeFileSync(conf, 'upstream-port-reuse 1\n');
  const s = await startSinkhole({ upstream: upstream.address, lists: {}, args: ['--config', conf] });
  t.teardown(() => s.close());
  const portsFor = async (tag: string): Promise<number> => {
    const before = upstream.queries.length;
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => askServer(s.port, `${tag}${i}.reload-reuse.example`, T.A)));
    t.equal(answers.filter((a) => a.answers[0]?.text === '192.0.2.64').length, 100, `${tag}: all 100 answered`);
    return new Set(upstream.queries.slice(before).map((q) => q.from.port)).size;
  };
  const fresh = await portsFor('a');
  t.ok(fresh >= 90, `upstream-port-reuse 1: ${fresh} ports for 100 queries`);
  writeFileSync(conf, 'upstream-port-reuse 32\n');
  t.match(await s.server.reloadConfig('test'), { reloaded: true, restartNeeded: [] }, 'reloaded, no restart needed');
  const shared = await portsFor('b');
  t.ok(shared <= 40, `upstream-port-reuse 32 after the reload: ${shared} ports for 100 queries`);
});
