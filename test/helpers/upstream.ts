// A real DNS upstream for tests, in-process, on 127.0.0.1: UDP and TCP on one port. Each
// test gives it a handler that decides the reply; it records every query it receives.
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { encodeName, encodeRr, optRecord, readName, type EdnsOption, type Rr } from './dns.js';

export interface UpstreamQuery {
  id: number;
  /** The qname exactly as received (case preserved). */
  rawName: string;
  /** Lower-cased qname. */
  name: string;
  type: number;
  class: number;
  tcp: boolean;
  msg: Buffer;
  /** The OPT record's UDP size, or 0 without EDNS. */
  udpSize: number;
  /** Where the query came from. */
  from: { address: string; port: number };
}

export interface Reply {
  rcode?: number;
  answers?: Rr[];
  authority?: Rr[];
  additional?: Rr[];
  /** Add an OPT record (with these options) to the reply. */
  opt?: { options?: EdnsOption[]; udpSize?: number };
  tc?: boolean;
  aa?: boolean;
  /** Do not reply at all. */
  drop?: boolean;
  delayMs?: number;
  /** Replace the reply's ID (to test spoofed answers). */
  id?: number;
  /** Replace the question name in the reply. */
  questionName?: string;
}

export type Handler = (q: UpstreamQuery) => Reply;

export interface TestUpstream {
  host: string;
  port: number;
  /** `127.0.0.1:PORT`, ready for --upstream. */
  address: string;
  queries: UpstreamQuery[];
  handler: Handler;
  close(): Promise<void>;
}

export function buildReply(q: UpstreamQuery, r: Reply): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(r.id ?? q.id, 0);
  const flags = 0x8000 | (r.aa ? 0x0400 : 0) | (r.tc ? 0x0200 : 0) | (q.msg.readUInt16BE(2) & 0x0100) | 0x0080 | ((r.rcode ?? 0) & 0x0f);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  const answers = r.answers ?? [];
  const authority = r.authority ?? [];
  const additional = r.additional ?? [];
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(authority.length, 8);
  header.writeUInt16BE(additional.length + (r.opt ? 1 : 0), 10);
  const question = Buffer.alloc(4);
  question.writeUInt16BE(q.type, 0);
  question.writeUInt16BE(q.class, 2);
  return Buffer.concat([
    header, encodeName(r.questionName ?? q.rawName), question,
    ...answers.map(encodeRr), ...authority.map(encodeRr), ...additional.map(encodeRr),
    ...(r.opt ? [optRecord(r.opt.udpSize ?? 1232, r.opt.options ?? [])] : []),
  ]);
}

function parse(msg: Buffer, tcp: boolean, from: { address: string; port: number }): UpstreamQuery {
  const n = readName(msg, 12);
  let udpSize = 0;
  if (msg.readUInt16BE(10) > 0) {
    const at = n.end + 4;
    if (msg[at] === 0 && msg.readUInt16BE(at + 1) === 41) udpSize = msg.readUInt16BE(at + 3);
  }
  return {
    id: msg.readUInt16BE(0), rawName: n.name, name: n.name.toLowerCase(), type: msg.readUInt16BE(n.end),
    class: msg.readUInt16BE(n.end + 2), tcp, msg: Buffer.from(msg), udpSize, from,
  };
}

export async function startUpstream(handler: Handler): Promise<TestUpstream> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    // This upstream shares its thread with the test and the server. With the default 208 KB
    // it dropped a few hundred of 1,000 queries kept 256 at a time whenever the thread was
    // slow (RcvbufErrors in /proc/net/snmp), and a query whose three tries were all dropped
    // failed the test. A real upstream reads on a thread of its own, with a buffer like this.
    udp.setRecvBufferSize(4 * 1024 * 1024);
    const port = udp.address().port;
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      continue;
    }
    return wire(udp, tcp, port, handler);
  }
  throw new Error('no free port for the test upstream');
}

function wire(udp: Socket, tcp: Server, port: number, handler: Handler): TestUpstream {
  const timers = new Set<NodeJS.Timeout>();
  const upstream: TestUpstream = {
    host: '127.0.0.1', port, address: `127.0.0.1:${port}`, queries: [], handler,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => {
        tcp.close(() => r());
        for (const s of sockets) s.destroy();
      })]);
    },
  };
  const later = (ms: number, fn: () => void): void => {
    if (!ms) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  udp.on('message', (msg, rinfo) => {
    const q = parse(msg, false, { address: rinfo.address, port: rinfo.port });
    upstream.queries.push(q);
    const r = upstream.handler(q);
    if (r.drop) return;
    later(r.delayMs ?? 0, () => udp.send(buildReply(q, r), rinfo.port, rinfo.address));
  });
  const sockets = new Set<import('node:net').Socket>();
  tcp.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        const q = parse(msg, true, { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 });
        upstream.queries.push(q);
        const r = upstream.handler(q);
        if (r.drop) continue;
        later(r.delayMs ?? 0, () => {
          const reply = buildReply(q, { ...r, tc: false });
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length, 0);
          if (!socket.destroyed) socket.write(Buffer.concat([len, reply]));
        });
      }
    });
  });
  return upstream;
}

/** An upstream endpoint (as the UDP client takes it) on 127.0.0.1. */
export interface UdpEndpoint { host: string; port: number; family: 4; label: string }

/**
 * A live upstream that also forges: to each query, at once from another port, the same ID
 * and question with NXDOMAIN; 20 ms later the real answer (NOERROR) from its own port.
 * `seen`: the source ports the queries came from.
 */
export async function startForgingUpstream(): Promise<{ endpoint: UdpEndpoint; seen: Set<number>; close(): void }> {
  const responder = createSocket('udp4');
  const forger = createSocket('udp4');
  const seen = new Set<number>();
  responder.on('message', (m, from) => {
    seen.add(from.port);
    const forged = Buffer.from(m);
    forged[2]! |= 0x80;
    forged[3] = (forged[3]! & 0xf0) | 3;
    forger.send(forged, from.port, '127.0.0.1');
    const answer = Buffer.from(m);
    answer[2]! |= 0x80;
    setTimeout(() => responder.send(answer, from.port, from.address), 20);
  });
  await new Promise<void>((r) => responder.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => forger.bind(0, '127.0.0.1', () => r()));
  return {
    endpoint: { host: '127.0.0.1', port: responder.address().port, family: 4, label: 'x' },
    seen,
    close: () => {
      responder.close();
      forger.close();
    },
  };
}

/** An endpoint on 127.0.0.1 where nothing listens (a port bound, then closed): its datagrams get ICMP port unreachable. */
export async function closedUdpEndpoint(): Promise<UdpEndpoint> {
  const closed = createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
  const port = closed.address().port;
  await new Promise<void>((r) => closed.close(() => r()));
  return { host: '127.0.0.1', port, family: 4, label: `127.0.0.1:${port}` };
}
