// Queries to upstreams over UDP on a few long-lived sockets. Each query gets a fresh random
// ID; a response is taken only from the address and port it was sent to, with the same ID
// and the same question. Retransmission times and expiries are found by one sweep over the
// pending table every SWEEP_MS, not by a timer per query.
import { randomFillSync } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { answersQuestion } from '../../../wire/response.js';
import { literalLookup, type Endpoint } from '../../../net/endpoint.js';

const SOCKETS_PER_FAMILY = 4;
const SWEEP_MS = 25;

interface Pending {
  upstream: Endpoint;
  qnameKey: string;
  qtype: number;
  qclass: number;
  expiresAt: number;
  done: (response: Buffer | null) => void;
  /** When `retry` is called, once, unless an answer came first (Infinity: never). */
  retryAt: number;
  retry: (() => void) | null;
}

export class UdpUpstreamClient {
  private readonly sockets: { 4: Socket[]; 6: Socket[] } = { 4: [], 6: [] };
  /** key: socket number * 65536 + ID. */
  private readonly pending = new Map<number, Pending>();
  private readonly random = Buffer.allocUnsafe(4096);
  private randomAt = this.random.length;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly onError: (err: Error) => void) {}

  private random16(): number {
    if (this.randomAt + 2 > this.random.length) {
      randomFillSync(this.random);
      this.randomAt = 0;
    }
    const value = this.random.readUInt16BE(this.randomAt);
    this.randomAt += 2;
    return value;
  }

  private socket(family: 4 | 6, index: number): Socket {
    const list = this.sockets[family];
    let socket = list[index];
    if (socket === undefined) {
      socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
      const number = (family === 4 ? 0 : SOCKETS_PER_FAMILY) + index;
      socket.on('message', (msg, rinfo) => this.receive(number, msg, rinfo.address, rinfo.port));
      socket.on('error', (err) => this.onError(err));
      // Exclusive: in a cluster worker a shared socket would hand answers to other workers.
      socket.bind({ port: 0, exclusive: true }, () => {
        // Answers arrive in bursts when many queries are forwarded at once; the kernel's
        // default buffer (~200 KB) overflows and drops them while the event loop is busy.
        try {
          socket!.setRecvBufferSize(4 * 1024 * 1024);
        } catch {
          // Only a closed socket refuses; the kernel quietly caps the size at net.core.rmem_max.
        }
      });
      socket.unref();
      list[index] = socket;
    }
    return socket;
  }

  /**
   * Sends `msg` (its ID is overwritten) to `upstream`; `done` gets the response, or null at
   * `expiresAt` (a Date.now() value) or when the send fails. If no answer has come by
   * `retryAt`, `retry` is called (the caller asks again) while this try keeps waiting: a late
   * answer is still taken. Returns a handle for `cancel`, or -1 when nothing was sent.
   */
  send(upstream: Endpoint, msg: Buffer, qnameKey: string, qtype: number, qclass: number, expiresAt: number,
    done: (response: Buffer | null) => void, retryAt = Infinity, retry: (() => void) | null = null): number {
    if (this.closed) {
      done(null);
      return -1;
    }
    const index = this.random16() % SOCKETS_PER_FAMILY;
    const number = (upstream.family === 4 ? 0 : SOCKETS_PER_FAMILY) + index;
    let id = this.random16();
    let key = number * 65536 + id;
    for (let tries = 0; this.pending.has(key) && tries < 16; tries++) {
      id = this.random16();
      key = number * 65536 + id;
    }
    if (this.pending.has(key)) {
      done(null);
      return -1;
    }
    msg.writeUInt16BE(id, 0);
    const entry: Pending = { upstream, qnameKey, qtype, qclass, expiresAt, done, retryAt, retry };
    this.pending.set(key, entry);
    this.socket(upstream.family, index).send(msg, upstream.port, upstream.host, (err) => {
      if (err && this.pending.get(key) === entry) {
        this.pending.delete(key);
        done(null);
      }
    });
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweepTimer.unref();
    }
    return key;
  }

  /** Stops waiting for a try whose query was answered by another one. */
  cancel(handle: number): void {
    this.pending.delete(handle);
  }

  private receive(number: number, msg: Buffer, address: string, port: number): void {
    if (msg.length < 12) return;
    const key = number * 65536 + msg.readUInt16BE(0);
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    // A reply from elsewhere, or to another question, is spoofed or stale: ignore it and
    // keep waiting for the real one.
    if (port !== entry.upstream.port || address !== entry.upstream.host) return;
    if (!answersQuestion(msg, entry.qnameKey, entry.qtype, entry.qclass)) return;
    this.pending.delete(key);
    entry.done(msg);
  }

  private sweep(): void {
    const now = Date.now();
    // A full scan: tries have different retransmission times, so there is no order to exploit.
    // The table holds only what is in flight; even 100,000 entries (a dead upstream under
    // 8,000 new names a second) scan in ~1.5 ms, a few per cent of a core at this period.
    for (const [key, entry] of this.pending) {
      if (entry.expiresAt <= now) {
        this.pending.delete(key);
        entry.done(null);
      } else if (entry.retryAt <= now) {
        entry.retryAt = Infinity;
        entry.retry!();
      }
    }
    if (this.pending.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  close(): void {
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const entry of waiting) entry.done(null);
    for (const socket of [...this.sockets[4], ...this.sockets[6]]) socket?.close();
  }
}
