// Queries to upstreams over UDP. Each query leaves from a socket of its own, bound to a port
// the kernel picks at random from the ephemeral range (Linux randomises UDP port 0 binds),
// and carries a random ID: an off-path attacker forging an answer must guess both (RFC 5452
// section 9.2: ~16 bits of ID × ~15 bits of port). The socket is closed as soon as its query
// is answered, cancelled or expired. Open sockets are capped (`maxSockets`); at the cap a new
// query shares a random open socket (with its own ID) instead of waiting or failing.
//
// A response is taken only from the address and port it was sent to, with the same ID and the
// same question. Retransmission times and expiries are found by one sweep over the pending
// table every SWEEP_MS, not by a timer per query.
import { Random16 } from './random16.js';
import { createSocket, type Socket } from 'node:dgram';
import { answersQuestion } from '../../../wire/response.js';
import { literalLookup, type Endpoint } from '../../../net/endpoint.js';

const SWEEP_MS = 25;
/** After running out of file descriptors, open no more sockets than were open, for this long. */
const LIMITED_MS = 60_000;
const ERROR_REPORT_MS = 10_000;

/** Open upstream sockets at most, by default: far below a service's file limit (systemd unit: 65536). */
export const DEFAULT_MAX_UPSTREAM_SOCKETS = 1024;

export interface UdpUpstreamOptions {
  /** Open sockets at most; past it queries share the open ones (default DEFAULT_MAX_UPSTREAM_SOCKETS). */
  maxSockets?: number;
}

/** For metrics: sockets open now, and queries that had to share one because of the cap. */
export interface UdpUpstreamCounters {
  socketsOpened: number;
  shared: number;
}

interface Port {
  socket: Socket;
  slot: number;
  family: 4 | 6;
  /** Queries waiting on this socket. */
  pending: number;
  /** Index in its family's list of open ports. */
  at: number;
}

interface Pending {
  port: Port;
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
  /** Open ports by slot number (a slot is reused once its socket is closed). */
  private readonly slots: (Port | null)[];
  private readonly freeSlots: number[];
  private readonly open: { 4: Port[]; 6: Port[] } = { 4: [], 6: [] };
  /** key: slot * 65536 + ID. */
  private readonly pending = new Map<number, Pending>();
  private readonly random = new Random16(4096);
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly maxSockets: number;
  /** maxSockets, or fewer for a while after the process ran out of file descriptors. */
  private limit: number;
  private limitedAt = 0;
  private lastErrorAt = 0;
  private unreportedErrors = 0;
  readonly counters: UdpUpstreamCounters = { socketsOpened: 0, shared: 0 };

  constructor(private readonly onError: (err: Error) => void, options: UdpUpstreamOptions = {}) {
    this.maxSockets = Math.max(1, Math.min(32768, options.maxSockets ?? DEFAULT_MAX_UPSTREAM_SOCKETS));
    this.limit = this.maxSockets;
    this.slots = new Array<Port | null>(this.maxSockets).fill(null);
    this.freeSlots = Array.from({ length: this.maxSockets }, (_, i) => this.maxSockets - 1 - i);
  }

  /** Sockets open now. */
  get openSockets(): number {
    return this.maxSockets - this.freeSlots.length;
  }


  /** A new socket on a random port, or (at the cap) a random open one of the family; null when none. */
  private port(family: 4 | 6): Port | null {
    if (this.limit < this.maxSockets && Date.now() - this.limitedAt > LIMITED_MS) this.limit = this.maxSockets;
    const slot = this.openSockets < this.limit ? this.freeSlots.pop() : undefined;
    if (slot === undefined) {
      const list = this.open[family];
      if (list.length === 0) return null;
      this.counters.shared++;
      return list[this.random.next() % list.length]!;
    }
    const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
    const port: Port = { socket, slot, family, pending: 0, at: this.open[family].length };
    socket.on('message', (msg, rinfo) => this.receive(slot, msg, rinfo.address, rinfo.port));
    socket.on('error', (err) => this.socketError(port, err));
    // Port 0: the kernel picks a free port at random. Exclusive: in a cluster worker a bind
    // would otherwise go through the primary and share its socket.
    socket.bind({ port: 0, exclusive: true });
    socket.unref();
    this.slots[slot] = port;
    this.open[family].push(port);
    this.counters.socketsOpened++;
    return port;
  }

  /**
   * A socket that could not bind (out of file descriptors: EMFILE/ENFILE, or of ports) never
   * sends: its queries fail now, so that the forwarder tries again at once instead of waiting
   * for their deadline, and for a while queries share the sockets that are open.
   */
  private socketError(port: Port, err: NodeJS.ErrnoException): void {
    if (err.syscall === 'bind') {
      this.limit = Math.max(1, this.openSockets - 1);
      this.limitedAt = Date.now();
      const failed: Pending[] = [];
      for (const [key, entry] of this.pending) {
        if (entry.port !== port) continue;
        this.pending.delete(key);
        failed.push(entry);
      }
      port.pending = 1;
      this.release(port);
      for (const entry of failed) entry.done(null);
    }
    // One report per ERROR_REPORT_MS, with the count of the others: a socket per query must
    // not mean a log line per query.
    const now = Date.now();
    if (now - this.lastErrorAt < ERROR_REPORT_MS) {
      this.unreportedErrors++;
      return;
    }
    this.lastErrorAt = now;
    const more = this.unreportedErrors;
    this.unreportedErrors = 0;
    this.onError(more > 0 ? Object.assign(new Error(`${err.message} (and ${more} more socket errors)`), { code: err.code }) : err);
  }

  /** One query less on `port`; with none left its socket is closed and the slot freed. */
  private release(port: Port): void {
    if (--port.pending > 0) return;
    if (this.slots[port.slot] !== port) return;
    this.slots[port.slot] = null;
    this.freeSlots.push(port.slot);
    const list = this.open[port.family];
    const last = list.pop()!;
    if (last !== port) {
      list[port.at] = last;
      last.at = port.at;
    }
    port.socket.close();
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
    const port = this.port(upstream.family);
    if (port === null) {
      done(null);
      return -1;
    }
    let id = this.random.next();
    let key = port.slot * 65536 + id;
    for (let tries = 0; this.pending.has(key) && tries < 16; tries++) {
      id = this.random.next();
      key = port.slot * 65536 + id;
    }
    if (this.pending.has(key)) {
      done(null);
      return -1;
    }
    msg.writeUInt16BE(id, 0);
    const entry: Pending = { port, upstream, qnameKey, qtype, qclass, expiresAt, done, retryAt, retry };
    this.pending.set(key, entry);
    port.pending++;
    port.socket.send(msg, upstream.port, upstream.host, (err) => {
      if (err && this.pending.get(key) === entry) {
        this.pending.delete(key);
        this.release(port);
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
    const entry = this.pending.get(handle);
    if (entry === undefined) return;
    this.pending.delete(handle);
    this.release(entry.port);
  }

  private receive(slot: number, msg: Buffer, address: string, port: number): void {
    if (msg.length < 12) return;
    const key = slot * 65536 + msg.readUInt16BE(0);
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    // A reply from elsewhere, or to another question, is spoofed or stale: ignore it and
    // keep waiting for the real one.
    if (port !== entry.upstream.port || address !== entry.upstream.host) return;
    if (!answersQuestion(msg, entry.qnameKey, entry.qtype, entry.qclass)) return;
    this.pending.delete(key);
    this.release(entry.port);
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
        this.release(entry.port);
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
    for (const port of this.slots) port?.socket.close();
    this.slots.fill(null);
  }
}
