// Fuzzing the real server from the outside: mutated queries over UDP (bit flips, truncation,
// random header counts, compression pointers in the question, random EDNS, odd labels,
// oversized datagrams, random bytes) and mutated TCP streams (random length prefixes, split
// writes, garbage, resets and half-closes), from a fixed seed, sent to `sinkhole serve` in a
// child process whose upstream is a responder in this process. Afterwards the server must
// still be alive, answer a blocked and a forwarded name correctly over UDP and TCP, have
// logged no error, and keep its memory bounded.
//
//   npm run fuzz -- --packets 10000000 [--seed N] [--streams N] [--rss-limit MB]
//
// test/fuzz.test.ts runs 20,000 packets of it in `npm test`.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

export interface FuzzOptions {
  /** UDP datagrams to send. */
  packets: number;
  /** TCP connections to open (each a stream of several mutated messages); default packets / 100. */
  streams?: number;
  seed: number;
  /** Progress lines (long runs); nothing when not given. */
  progress?: (line: string) => void;
}

export interface FuzzResult {
  packets: number;
  streams: number;
  seconds: number;
  /** UDP datagrams sent per second (while the UDP part ran). */
  packetsPerSecond: number;
  /** Datagrams the server sent back (many fuzzed ones are dropped, as they should be). */
  udpReplies: number;
  /** Replies that were not DNS responses (shorter than a header, or without QR): must be 0. */
  badReplies: number;
  tcpReplyBytes: number;
  /** TCP streams that got at least one byte back. */
  tcpStreamsAnswered: number;
  upstreamQueries: number;
  /** After the fuzzing: the answers to the checks, or why there was none. */
  blocked: string;
  forwarded: string;
  forwardedTcp: string;
  alive: boolean;
  rssMb: number;
  peakRssMb: number;
  /** Server log lines at level error or worse. */
  errorLines: string[];
}

export const BLOCKED_NAME = 'messenger.hotmail.com';
export const FORWARD_ANSWER = '192.0.2.1';

/** The folder holding package.json above this file (bench/ under tap, dist-bench/bench/ when built). */
function repoRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** 0 <= n < max. */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter((l) => l.length > 0).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

function question(name: Buffer, qtype: number, qclass = 1): Buffer {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(qtype, 0);
  tail.writeUInt16BE(qclass, 2);
  return Buffer.concat([name, tail]);
}

/** An OPT record: udp size, extended rcode/version/flags, and options as given (lengths may lie). */
function opt(r: Random): Buffer {
  const options: Buffer[] = [];
  for (let n = r.int(4); n > 0; n--) {
    const data = r.bytes(r.int(r.int(10) === 0 ? 300 : 20));
    const o = Buffer.alloc(4);
    o.writeUInt16BE(r.pick([8, 10, 12, 15, r.int(65536)]), 0);
    o.writeUInt16BE(r.int(5) === 0 ? r.int(65536) : data.length, 2);
    options.push(o, data);
  }
  const rdata = Buffer.concat(options);
  const rr = Buffer.alloc(11);
  rr[0] = 0;
  rr.writeUInt16BE(41, 1);
  rr.writeUInt16BE(r.pick([0, 1, 512, 1232, 4096, 65535, r.int(65536)]), 3);
  rr.writeUInt32BE(r.int(4) === 0 ? Math.floor(r.next() * 2 ** 32) : r.pick([0, 0x8000]), 5);
  rr.writeUInt16BE(r.int(6) === 0 ? r.int(65536) : rdata.length, 9);
  return Buffer.concat([rr, rdata]);
}

const NAMES = [BLOCKED_NAME, `chat.${BLOCKED_NAME}`, 'MeSSenger.HOTMAIL.com', 'www.example.org', 'cached.example.org',
  '1.0.0.127.in-addr.arpa', 'localhost', 'use-application-dns.net', 'x.lan', 'a.b.c.d.e.f.g.example.com', '.'];
const QTYPES = [1, 1, 1, 28, 28, 255, 16, 65, 12, 252, 251, 6, 2, 0];

/** A well-formed query to mutate: a known name or a fresh one, a common or odd type, sometimes EDNS. */
function baseQuery(r: Random): Buffer {
  const name = r.int(4) === 0 ? `f${r.int(100_000)}.fuzz.example` : r.pick(NAMES);
  const qtype = r.int(10) === 0 ? r.int(65536) : r.pick(QTYPES);
  const qclass = r.int(20) === 0 ? r.pick([3, 255, 254, r.int(65536)]) : 1;
  const edns = r.int(3) === 0;
  return Buffer.concat([header(r.int(65536), 0x0100, 1, 0, 0, edns ? 1 : 0), question(encodeName(name), qtype, qclass), edns ? opt(r) : Buffer.alloc(0)]);
}

const MAX_UDP = 65507;

/** One mutated datagram. */
export function mutatedQuery(r: Random): Buffer {
  const q = baseQuery(r);
  switch (r.int(10)) {
    case 0: // bit flips
      for (let n = 1 + r.int(8); n > 0; n--) q[r.int(q.length)]! ^= 1 << r.int(8);
      return q;
    case 1: // truncated
      return q.subarray(0, r.int(q.length));
    case 2: { // random header counts and flags (QR set, odd opcodes, TC)
      for (let at = 4; at < 12; at += 2) if (r.int(2) === 0) q.writeUInt16BE(r.pick([0, 1, 2, 255, 65535, r.int(65536)]), at);
      if (r.int(3) === 0) q.writeUInt16BE(r.int(65536), 2);
      return q;
    }
    case 3: { // compression pointers in the question: to itself, a loop, past the end, into the header
      const target = r.pick([12, 13, 14, 0, 5, 11, 0x3fff, r.int(0x4000)]);
      const pointer = Buffer.from([0xc0 | (target >> 8), target & 0xff]);
      const labels = r.int(2) === 0 ? Buffer.alloc(0) : encodeName('a.b').subarray(0, -1);
      const name = r.int(3) === 0 ? Buffer.concat([labels, Buffer.from([0xc0, 14]), Buffer.from([0xc0, 12])]) : Buffer.concat([labels, pointer]);
      return Buffer.concat([header(r.int(65536), 0x0100, 1, 0, 0, 0), question(name, r.pick(QTYPES))]);
    }
    case 4: { // EDNS: random OPT records, sometimes two, in odd places
      const count = 1 + r.int(2);
      const parts = [header(r.int(65536), 0x0100, 1, 0, 0, r.int(8) === 0 ? r.int(65536) : count), question(encodeName(r.pick(NAMES)), r.pick(QTYPES))];
      for (let n = 0; n < count; n++) parts.push(opt(r));
      return Buffer.concat(parts);
    }
    case 5: { // odd labels: too long, names over 255 bytes, the reserved 0x40 and 0x80 label types
      const kind = r.int(4);
      let name: Buffer;
      if (kind === 0) name = Buffer.concat([Buffer.from([63 + r.int(2)]), Buffer.alloc(64, 0x61), Buffer.from([0])]);
      else if (kind === 1) name = encodeName(Array.from({ length: 20 + r.int(100) }, () => 'abcdefghijklmn').join('.'));
      else if (kind === 2) name = Buffer.concat([Buffer.from([0x40 | r.int(64), 0x61, 0x62]), Buffer.from([0])]);
      else name = Buffer.concat([Buffer.from([0x80 | r.int(64)]), r.bytes(r.int(8)), Buffer.from([0])]);
      return Buffer.concat([header(r.int(65536), 0x0100, 1, 0, 0, 0), question(name, r.pick(QTYPES))]);
    }
    case 6: { // oversized: a query with a long tail, now and then the largest datagram there is
      const size = r.int(10) === 0 ? 4096 + r.int(MAX_UDP - 4096) : 513 + r.int(4096 - 513);
      return Buffer.concat([q, r.bytes(Math.max(0, size - q.length))]);
    }
    case 7: // random bytes
      return r.bytes(r.int(r.int(10) === 0 ? 2000 : 64));
    case 8: // bytes from a query's position replaced by random ones
      r.bytes(Math.min(q.length - 12, 1 + r.int(8))).copy(q, 12 + r.int(Math.max(1, q.length - 12)));
      return q;
    default: // well-formed (cached, blocked, forwarded, odd types): the paths that answer
      return q;
  }
}

/** One mutated TCP stream: length-prefixed messages, some lying about their length, and garbage. */
function mutatedStream(r: Random): Buffer {
  const parts: Buffer[] = [];
  for (let n = 1 + r.int(12); n > 0; n--) {
    const kind = r.int(8);
    const msg = kind < 3 ? baseQuery(r) : mutatedQuery(r).subarray(0, 65535);
    const prefix = Buffer.alloc(2);
    if (kind === 6) prefix.writeUInt16BE(r.pick([0, 1, 11, 12, 65535, r.int(65536)]), 0); // the length lies
    else prefix.writeUInt16BE(msg.length, 0);
    parts.push(kind === 7 ? r.bytes(1 + r.int(40)) : Buffer.concat([prefix, msg]));
  }
  return Buffer.concat(parts);
}

/** A responder for the server's forwarded queries: A 192.0.2.1 for every A question, an empty NOERROR otherwise. */
async function startResponder(): Promise<{ port: number; queries: () => number; close: () => Promise<void> }> {
  const socket = createSocket('udp4');
  let queries = 0;
  socket.on('message', (msg, rinfo) => {
    queries++;
    if (msg.length < 12) return;
    let at = 12;
    while (at < msg.length && msg[at] !== 0) at += msg[at]! + 1;
    const end = at + 5;
    if (end > msg.length) return;
    const qtype = msg.readUInt16BE(at + 1);
    const reply = Buffer.concat([header(msg.readUInt16BE(0), 0x8180 | (msg.readUInt16BE(2) & 0x0100), 1, qtype === 1 ? 1 : 0, 0, 0),
      msg.subarray(12, end),
      qtype === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 1]) : Buffer.alloc(0)]);
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { port: socket.address().port, queries: () => queries, close: () => new Promise((r) => socket.close(() => r())) };
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function memoryOf(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakRssMb: Math.round(kb('VmHWM') / 1024) };
}

/** The A answer's address (or the rcode) of a reply to `id`; why not, when there is none. */
function describeAnswer(reply: Buffer | null, id: number): string {
  if (reply === null) return 'no answer';
  if (reply.length < 12 || reply.readUInt16BE(0) !== id || (reply[2]! & 0x80) === 0) return 'not a reply to the query';
  const rcode = reply[3]! & 0x0f;
  if (rcode !== 0) return `rcode ${rcode}`;
  if (reply.readUInt16BE(6) === 0) return 'no answer records';
  let at = 12;
  while (at < reply.length && reply[at] !== 0) at += reply[at]! + 1;
  at += 5;
  if (at + 14 > reply.length) return 'a reply too short for its answer';
  // The first answer record: its name (a pointer here), type, class, TTL, length, data.
  at += (reply[at]! & 0xc0) === 0xc0 ? 2 : 0;
  if (reply.readUInt16BE(at) !== 1) return `type ${reply.readUInt16BE(at)}`;
  return [...reply.subarray(at + 10, at + 14)].join('.');
}

async function askUdp(port: number, name: string, id: number): Promise<string> {
  const socket = createSocket('udp4');
  // Another /24 than the fuzzing sockets: the check is a fresh client.
  await new Promise<void>((r) => socket.bind(0, '127.0.1.4', r));
  const msg = Buffer.concat([header(id, 0x0100, 1, 0, 0, 0), question(encodeName(name), 1)]);
  const reply = await new Promise<Buffer | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), 3000);
    socket.on('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    socket.send(msg, port, '127.0.0.1');
  });
  socket.close();
  return describeAnswer(reply, id);
}

async function askTcp(port: number, name: string, id: number): Promise<string> {
  const msg = Buffer.concat([header(id, 0x0100, 1, 0, 0, 0), question(encodeName(name), 1)]);
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(msg.length, 0);
  const reply = await new Promise<Buffer | null>((resolve) => {
    let data = Buffer.alloc(0);
    const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.1.4' }, () => socket.write(Buffer.concat([prefix, msg])));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, 3000);
    socket.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
      if (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.subarray(2, 2 + data.readUInt16BE(0)));
      }
    });
    socket.on('error', () => undefined);
  });
  return describeAnswer(reply, id);
}

type Server = ChildProcessByStdio<null, Readable, Readable>;

/** `dir` holds the blocklists and the state folder (history): nothing is written outside it. */
async function startServer(port: number, upstreamPort: number, dir: string, errorLines: string[]): Promise<Server> {
  const cli = join(repoRoot(), 'dist', 'main', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  // The rate limits off (per address and per /24: --rate-limit 0 alone leaves the network
  // limit on): every fuzzed packet goes through the whole pipeline, not just the guard.
  const server = spawn(process.execPath, [cli, 'serve', '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${upstreamPort}`,
    '--blocklists', dir, '--state-dir', join(dir, 'state'), '--rate-limit', '0', '--network-rate-limit', '0', '--upstream-timeout', '500'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let pending = '';
  let readyLine: () => void;
  const ready = new Promise<void>((r) => (readyLine = r));
  // Read all output along the way: a full pipe would stop the server.
  server.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line.includes('"msg":"ready"')) readyLine();
      const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
      if (level >= 50 && errorLines.length < 20) errorLines.push(line.slice(0, 500));
    }
  });
  server.stderr.on('data', (chunk: Buffer) => {
    if (errorLines.length < 20) errorLines.push(`stderr: ${chunk.toString().slice(0, 500)}`);
  });
  const exited = new Promise<never>((_, reject) => server.once('exit', (code) => reject(new Error(`sinkhole serve exited (${code}) before ready: ${errorLines.join(' ')}`))));
  await Promise.race([ready, exited]);
  exited.catch(() => undefined);
  return server;
}

async function stopServer(server: Server): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise<void>((r) => server.once('exit', () => r()));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const streams = o.streams ?? Math.max(20, Math.floor(o.packets / 100));
  const dir = mkdtempSync(join(tmpdir(), 'sinkhole-fuzz-'));
  writeFileSync(join(dir, 'msn.txt'), `${BLOCKED_NAME}\n`);
  const responder = await startResponder();
  const errorLines: string[] = [];
  const port = await freeUdpPort();
  let server: Server | null = null;
  const sockets: UdpSocket[] = [];
  try {
    server = await startServer(port, responder.port, dir, errorLines);
    const r = new Random(o.seed);
    // The fuzzing traffic and the checks come from 127.0.0.x; the checks from 127.0.1.4.
    let udpReplies = 0;
    let badReplies = 0;
    for (let i = 0; i < 4; i++) {
      const s = createSocket('udp4');
      s.on('message', (m) => {
        udpReplies++;
        if (m.length < 12 || (m[2]! & 0x80) === 0) badReplies++;
      });
      s.on('error', () => undefined);
      await new Promise<void>((res) => s.bind(0, `127.0.0.${10 + i}`, res));
      sockets.push(s);
    }
    const started = performance.now();
    let sent = 0;
    let lastProgress = started;
    let udpSeconds = 0;
    const udp = async (): Promise<void> => {
      const stream = new Random(o.seed ^ 0x9e3779b9);
      while (sent < o.packets) {
        // A burst, then a turn for the event loop (and the kernel): the server must read them to be fuzzed.
        for (let n = 0; n < 32 && sent < o.packets; n++, sent++) {
          const msg = mutatedQuery(r);
          sockets[stream.int(sockets.length)]!.send(msg, port, '127.0.0.1');
        }
        await sleep(1);
        if (o.progress && performance.now() - lastProgress > 10_000) {
          lastProgress = performance.now();
          const m = memoryOf(server!.pid!);
          o.progress(`${sent} packets, ${Math.round(sent / ((lastProgress - started) / 1000))}/s, ${udpReplies} replies, RSS ${m.rssMb} MB`);
        }
        if (server!.exitCode !== null) break;
      }
      udpSeconds = (performance.now() - started) / 1000;
    };
    let tcpReplyBytes = 0;
    let tcpStreamsAnswered = 0;
    let streamsDone = 0;
    const tcp = async (): Promise<void> => {
      const s = new Random(o.seed ^ 0x5bd1e995);
      // 32 connections at a time, from 32 addresses: each address's connections stay below
      // its cap (--tcp-max-per-client) even while the server holds some (a dropped message
      // keeps a connection waiting until its answer deadline).
      let from = 0;
      const worker = async (): Promise<void> => {
        while (streamsDone < streams && server!.exitCode === null) {
          streamsDone++;
          const bytes = mutatedStream(s);
          const ending = s.int(10);
          const cuts = Array.from({ length: s.int(6) }, () => s.int(bytes.length)).sort((a, b) => a - b);
          await new Promise<void>((resolve) => {
            const socket = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${64 + (from++ % 32)}` });
            // 1 s, not less: on a loaded machine (CI) an answer can take a few hundred ms.
            const timer = setTimeout(() => socket.destroy(), 1000);
            let answered = false;
            socket.on('data', (c: Buffer) => {
              tcpReplyBytes += c.length;
              if (!answered) tcpStreamsAnswered++;
              answered = true;
            });
            socket.on('error', () => undefined);
            socket.on('close', () => {
              clearTimeout(timer);
              resolve();
            });
            socket.on('connect', async () => {
              let at = 0;
              for (const cut of [...cuts, bytes.length]) {
                if (socket.destroyed) return;
                socket.write(bytes.subarray(at, cut));
                at = cut;
                await new Promise((res) => setImmediate(res));
              }
              // Half-close (answers still due), reset, or leave it to the timer.
              if (ending < 5) socket.end();
              else if (ending < 8) socket.destroy();
            });
          });
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
    };
    await Promise.all([udp(), tcp()]);
    const seconds = (performance.now() - started) / 1000;
    // Let the server finish what it holds (forwarded queries, deadlines), then check it.
    await sleep(500);
    const alive = server.exitCode === null && server.signalCode === null;
    const blocked = alive ? await askUdp(port, BLOCKED_NAME, 4242) : 'server gone';
    const forwarded = alive ? await askUdp(port, 'after-fuzz.example.org', 4243) : 'server gone';
    const forwardedTcp = alive ? await askTcp(port, 'after-fuzz-tcp.example.org', 4244) : 'server gone';
    const memory = alive ? memoryOf(server.pid!) : { rssMb: NaN, peakRssMb: NaN };
    return {
      packets: sent, streams: streamsDone, seconds: Math.round(seconds * 10) / 10, packetsPerSecond: Math.round(sent / udpSeconds),
      udpReplies, badReplies, tcpReplyBytes, tcpStreamsAnswered, upstreamQueries: responder.queries(), blocked, forwarded, forwardedTcp, alive,
      ...memory, errorLines,
    };
  } finally {
    for (const s of sockets) s.close();
    if (server !== null) await stopServer(server);
    await responder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a run must show: the server answers correctly, logged no error, and its memory is bounded. */
export function fuzzProblems(r: FuzzResult, rssLimitMb: number): string[] {
  const problems: string[] = [];
  if (!r.alive) problems.push('the server exited');
  if (r.blocked !== '127.0.0.1') problems.push(`blocked name: ${r.blocked} (want 127.0.0.1)`);
  if (r.forwarded !== FORWARD_ANSWER) problems.push(`forwarded name over UDP: ${r.forwarded} (want ${FORWARD_ANSWER})`);
  if (r.forwardedTcp !== FORWARD_ANSWER) problems.push(`forwarded name over TCP: ${r.forwardedTcp} (want ${FORWARD_ANSWER})`);
  if (r.badReplies > 0) problems.push(`${r.badReplies} replies that are not DNS responses`);
  if (r.errorLines.length > 0) problems.push(`${r.errorLines.length} error lines in the log, first: ${r.errorLines[0]}`);
  if (!(r.rssMb <= rssLimitMb)) problems.push(`RSS ${r.rssMb} MB (limit ${rssLimitMb} MB)`);
  return problems;
}

async function main(argv: string[]): Promise<void> {
  const o = { packets: 10_000_000, seed: 13, streams: undefined as number | undefined, rssLimit: 200 };
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--packets') o.packets = value;
    else if (argv[i] === '--seed') o.seed = value;
    else if (argv[i] === '--streams') o.streams = value;
    else if (argv[i] === '--rss-limit') o.rssLimit = value;
    else {
      console.error(`unknown option ${argv[i]}; use --packets N, --seed N, --streams N, --rss-limit MB`);
      process.exit(2);
    }
    if (!Number.isInteger(value) || value < 0) {
      console.error(`${argv[i]} needs a whole number, not "${argv[i + 1] ?? ''}"`);
      process.exit(2);
    }
    i++;
  }
  console.log(`fuzzing with ${o.packets} packets, seed ${o.seed}`);
  const r = await runFuzz({ packets: o.packets, seed: o.seed, ...(o.streams === undefined ? {} : { streams: o.streams }), progress: (l) => console.log(l) });
  console.log(`${r.packets} packets and ${r.streams} TCP streams in ${r.seconds} s: ${r.packetsPerSecond} packets/s; ` +
    `${r.udpReplies} UDP replies, ${r.tcpReplyBytes} TCP reply bytes on ${r.tcpStreamsAnswered} streams, ${r.upstreamQueries} queries at the upstream`);
  console.log(`afterwards: blocked -> ${r.blocked}, forwarded -> ${r.forwarded}, over TCP -> ${r.forwardedTcp}; RSS ${r.rssMb} MB (peak ${r.peakRssMb} MB)`);
  const problems = fuzzProblems(r, o.rssLimit);
  for (const p of problems) console.log(`FAIL: ${p}`);
  if (problems.length === 0) console.log('OK');
  process.exit(problems.length === 0 ? 0 : 1);
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) await main(process.argv.slice(2));
