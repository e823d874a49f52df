// Queries to upstreams over UDP. Each query leaves from a socket of its own, bound to a port
// the kernel picks at random from the ephemeral range (Linux randomises UDP port 0 binds),
// and carries a random ID: an off-path attacker forging an answer must guess both (RFC 5452
// section 9.2: ~16 bits of ID × ~15 bits of port). The socket is closed as soon as its query
// is answered, cancelled or expired. Open sockets are capped (`maxSockets`); at the cap a new
// query shares a random open socket to the same upstream (with its own ID) instead of waiting.
//
// Opening a socket is off the query path: a few spare sockets, already bound to random ports,
// wait in a pool (`spareSockets`), refilled after the event loop's current turn. A query takes
// one, connects it to its upstream (no packet: it fixes the peer and the route) and sends.
// A connected socket hears of ICMP errors: "port unreachable" comes back as ECONNREFUSED, and
// a missing or unreachable route fails the connect or the send (ENETUNREACH, EHOSTUNREACH...),
// so such a query fails at once with the reason (`done(null, why)`) instead of waiting for
// its retransmission timeout: the forwarder moves to the next upstream at once.
//
// Where the batched-UDP addon is built (src/net/batch-udp), the sockets are the addon's: the
// same socket, bind, connect and close per query, without a node:dgram Socket (a JS object,
// an EventEmitter, a libuv handle, two epoll_ctl) each; the answers of every socket come to
// JavaScript in one call per turn of the event loop. SINKHOLE_BATCH_UDP=off keeps dgram.
//
// `portReuse` N > 1 (--upstream-port-reuse) trades some of that for speed: a port carries up
// to N queries, each with its own random ID, before it is closed. Up to LIVE_PORTS ports per
// upstream are open for reuse at once, a query takes one of them at random, and none is used
// for a new query once it is older than PORT_LIFE_MS. An off-path forger's odds per forged
// datagram are unchanged (he must still hit a port in use and an ID in flight on it); what is
// lost is that a port he has learnt (seen on the wire, or found by an ICMP side channel such
// as SADDNS, CVE-2020-25705) stays good for longer. docs/limits.md says when to choose it.
//
// A response is taken only from the address and port it was sent to, with the same ID and the
// same question. Retransmission times and expiries are found by one sweep over the pending
// table every SWEEP_MS, not by a timer per query.
import { Random16 } from './random16.js';
import { createSocket, type Socket } from 'node:dgram';
import { answersQuestion } from '../../../wire/response.js';
import { constants } from 'node:os';
import { literalLookup, type Endpoint } from '../../../net/endpoint.js';
import { loadBatchUdp, type UpstreamSocketsAddon, type UpstreamSetHandle } from '../../../net/batch-udp.js';
import { unreachableReason } from './unreachable.js';
import { SlotMap } from '../slot-map.js';

const SWEEP_MS = 25;
/** After running out of file descriptors, open no more sockets than were open, for this long. */
const LIMITED_MS = 60_000;
const ERROR_REPORT_MS = 10_000;
/** With port reuse: ports per upstream open for new queries at once (a query picks one at random). */
export const LIVE_PORTS = 16;
/** With port reuse: a port takes no new query once it has been in use this long (ms). */
export const PORT_LIFE_MS = 1000;
/** The most queries one port may carry (--upstream-port-reuse). */
export const MAX_PORT_REUSE = 256;

/** Open upstream sockets at most, by default: far below a service's file limit (systemd unit: 65536). */
export const DEFAULT_MAX_UPSTREAM_SOCKETS = 1024;
/** Spare sockets kept bound and ready at least (counted in the cap), once a query has been sent. */
export const MIN_SPARE_SOCKETS = 8;
/** Spare sockets at most, by default: a quarter of the cap. */
export const DEFAULT_SPARE_SOCKETS = DEFAULT_MAX_UPSTREAM_SOCKETS / 4;

export interface UdpUpstreamOptions {
  /** Open sockets at most; past it queries share the open ones (default DEFAULT_MAX_UPSTREAM_SOCKETS). */
  maxSockets?: number;
  /** Spare sockets bound ahead of need at most (default a quarter of maxSockets; 0: each opened by its query). */
  spareSockets?: number;
  /** The addon's upstream sockets; null: node:dgram. By default the addon's where it is built. */
  native?: UpstreamSocketsAddon | null;
  /** Queries one port carries before it is closed (default 1: a fresh port per query; at most MAX_PORT_REUSE). */
  portReuse?: number;
}

/** errno number -> code ('EMFILE'), for the addon's negated errnos. */
const ERRNO_CODES = new Map<number, string>(Object.entries(constants.errno).map(([code, n]) => [n, code]));

function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = ERRNO_CODES.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(`${syscall} ${code}`), { code, errno: -errno, syscall });
}

/** The addon's upstream set, opened with the first socket. */
interface NativeSet { addon: UpstreamSocketsAddon; handle: UpstreamSetHandle; meta: Int32Array }

/** For metrics: sockets opened, queries that had to share one (the cap), and sockets opened on the query path (pool empty). */
export interface UdpUpstreamCounters {
  socketsOpened: number;
  shared: number;
  openedOnDemand: number;
  /** Addon sockets made ready for another query (on a new random port) instead of closed and opened again. */
  socketsRecycled: number;
}

interface Port {
  /** node:dgram's socket, or null on the addon's (then `fd`). */
  socket: Socket | null;
  fd: number;
  /** Addon sockets: connected to `upstream` yet (the connect goes with the first send). */
  connected: boolean;
  slot: number;
  family: 4 | 6;
  /** Queries waiting on this socket. */
  pending: number;
  /** Index in its family's list of sockets in use; -1 while spare. */
  at: number;
  /** The upstream it is connected to; null while spare. */
  upstream: Endpoint | null;
  /** Set once its bind failed: it is closed and never used. */
  failed: boolean;
  /** With port reuse: queries it has carried, when it was first used, and its index in its upstream's live list (-1: not live, closed with its last query). */
  uses: number;
  usedSince: number;
  live: number;
}

/**
 * A spare, not yet in use: a node:dgram socket (connected as soon as a query takes it) or an
 * addon socket (`fd`; its connect goes with the first send).
 */
function newPort(socket: Socket | null, fd: number, slot: number, family: 4 | 6): Port {
  return { socket, fd, connected: socket !== null, slot, family, pending: 0, at: -1, upstream: null, failed: false, uses: 0, usedSince: 0, live: -1 };
}

/**
 * Who waits for a try (`sendTry`): told of its answer, or its failure, once, and of its
 * retransmission time. One object per query (the forwarder's Attempt), its tries told apart by
 * `tag`, instead of two closures per try: fewer objects made on every forwarded query.
 */
export interface UdpWaiter {
  /** The try's answer, or null at its deadline or when the send failed (with `why` when the upstream is unreachable). */
  udpAnswer(tag: number, response: Buffer | null, why?: string): void;
  /** No answer by the try's `retryAt` (called once): the caller may ask again; this try keeps waiting. */
  udpRetry(tag: number): void;
}

/** `send`'s callbacks as a waiter (bootstrap lookups, tests). */
class CallbackWaiter implements UdpWaiter {
  constructor(private readonly done: (response: Buffer | null, why?: string) => void, private readonly retry: (() => void) | null) {}

  udpAnswer(_tag: number, response: Buffer | null, why?: string): void {
    if (why === undefined) this.done(response);
    else this.done(response, why);
  }

  udpRetry(): void {
    this.retry?.();
  }
}

interface Pending {
  port: Port;
  upstream: Endpoint;
  qnameKey: string;
  qtype: number;
  qclass: number;
  expiresAt: number;
  waiter: UdpWaiter;
  tag: number;
  /** When the waiter's `udpRetry` is called, once, unless an answer came first (Infinity: never). */
  retryAt: number;
}

export class UdpUpstreamClient {
  /** Open ports by slot number (a slot is reused once its socket is closed). */
  private readonly slots: (Port | null)[];
  private readonly freeSlots: number[];
  /** Sockets in use (connected to an upstream), by family. */
  private readonly open: { 4: Port[]; 6: Port[] } = { 4: [], 6: [] };
  /** Spare sockets, bound and unconnected, by family. */
  private readonly spares: { 4: Port[]; 6: Port[] } = { 4: [], 6: [] };
  /** key: slot * 65536 + ID. */
  /** Tries in flight by slot * 65536 + ID (a SlotMap: see slot-map.ts for why not a Map). */
  private readonly pending = new SlotMap<number, Pending>();
  private readonly random = new Random16(4096);
  private sweepTimer: NodeJS.Timeout | null = null;
  private refillQueued: { 4: boolean; 6: boolean } = { 4: false, 6: false };
  /** Sockets taken by queries since the last refill, by family: the next refill's size. */
  private readonly taken: { 4: number; 6: number } = { 4: 0, 6: 0 };
  private closed = false;
  readonly maxSockets: number;
  /** The most spares kept; each refill puts back what the last turn of the event loop took, at least MIN_SPARE_SOCKETS. */
  readonly spareMax: number;
  /** maxSockets, or fewer for a while after the process ran out of file descriptors. */
  private limit: number;
  private limitedAt = 0;
  private lastErrorAt = 0;
  private unreportedErrors = 0;
  readonly counters: UdpUpstreamCounters = { socketsOpened: 0, shared: 0, openedOnDemand: 0, socketsRecycled: 0 };
  private readonly nativeAddon: UpstreamSocketsAddon | null;
  private nativeSet: NativeSet | null = null;
  /** Whose sockets: the batched-UDP addon's, or node:dgram's (SINKHOLE_BATCH_UDP=off, or no addon). */
  readonly sockets: 'addon' | 'dgram';
  /** Addon sockets by descriptor. */
  private readonly byFd: (Port | undefined)[] = [];
  private readonly batchPorts: (Port | undefined)[] = [];
  /** Queries one port carries (1: no reuse). */
  readonly portReuse: number;
  /** With port reuse: per upstream, the ports open for more queries. */
  private readonly livePorts = new Map<Endpoint, Port[]>();

  constructor(private readonly onError: (err: Error) => void, options: UdpUpstreamOptions = {}) {
    this.maxSockets = Math.max(1, Math.min(32768, options.maxSockets ?? DEFAULT_MAX_UPSTREAM_SOCKETS));
    this.spareMax = Math.max(0, Math.min(options.spareSockets ?? Math.floor(this.maxSockets / 4), Math.floor(this.maxSockets / 4)));
    this.limit = this.maxSockets;
    this.portReuse = Math.max(1, Math.min(MAX_PORT_REUSE, Math.floor(options.portReuse ?? 1)));
    if (options.native !== undefined) this.nativeAddon = options.native;
    else {
      const addon = loadBatchUdp().addon;
      // An addon built before the upstream sockets existed: dgram.
      this.nativeAddon = addon !== null && typeof addon.upOpen === 'function' ? addon as unknown as UpstreamSocketsAddon : null;
    }
    this.sockets = this.nativeAddon === null ? 'dgram' : 'addon';
    this.slots = new Array<Port | null>(this.maxSockets).fill(null);
    this.freeSlots = Array.from({ length: this.maxSockets }, (_, i) => this.maxSockets - 1 - i);
  }

  /** Sockets in use by queries now (spares not counted). */
  get openSockets(): number {
    return this.open[4].length + this.open[6].length;
  }

  /** Spare sockets bound and waiting for a query. */
  get spareSockets(): number {
    return this.spares[4].length + this.spares[6].length;
  }

  /** Every socket open (in use and spare): what the cap bounds. */
  private get allSockets(): number {
    return this.maxSockets - this.freeSlots.length;
  }

  /** A socket bound to a random port (not yet in use), or null at the cap or when the bind failed. */
  private openSocket(family: 4 | 6): Port | null {
    if (this.limit < this.maxSockets && Date.now() - this.limitedAt > LIMITED_MS) this.limit = this.maxSockets;
    if (this.allSockets >= this.limit) return null;
    const slot = this.freeSlots.pop()!;
    if (this.nativeAddon !== null) return this.openNative(family, slot);
    const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
    const port = newPort(socket, -1, slot, family);
    socket.on('message', (msg, rinfo) => this.receive(slot, msg, rinfo.address, rinfo.port));
    socket.on('error', (err) => this.socketError(port, err));
    this.slots[slot] = port;
    this.counters.socketsOpened++;
    // Port 0: the kernel picks a free port at random. Exclusive: in a cluster worker a bind
    // would otherwise go through the primary and share its socket. With a literal address the
    // bind happens here, and a failure (EMFILE...) has been reported (socketError) on return.
    socket.bind({ port: 0, exclusive: true });
    socket.unref();
    return port.failed ? null : port;
  }

  /** openSocket on the addon: a socket watched by the set; its connect binds it to a random port. */
  private openNative(family: 4 | 6, slot: number): Port | null {
    if (this.nativeSet === null) {
      const addon = this.nativeAddon!;
      const opened = addon.upOpen((count, payloads) => this.receiveNative(count, payloads));
      this.nativeSet = { addon, handle: opened.handle, meta: new Int32Array(opened.meta) };
    }
    const fd = this.nativeSet.addon.upSocket(this.nativeSet.handle, family);
    const port = newPort(null, fd, slot, family);
    this.slots[slot] = port;
    this.counters.socketsOpened++;
    if (fd < 0) {
      port.fd = -1;
      this.socketError(port, errnoError(-fd, 'socket'));
      return null;
    }
    this.byFd[fd] = port;
    return port;
  }

  /** The answers that came on addon sockets since the last turn: see batch_udp.c (upstream sockets). */
  private receiveNative(count: number, payloads: Buffer): void {
    const meta = this.nativeSet!.meta;
    // The sockets as they were when these came: handling one answer may close a socket (its
    // other try is cancelled) and a new one may get its number before its entry is reached.
    const ports = this.batchPorts;
    for (let i = 0, o = 0; i < count; i++, o += 3) ports[i] = this.byFd[meta[o]!];
    for (let i = 0, o = 0; i < count; i++, o += 3) {
      const port = ports[i];
      ports[i] = undefined;
      if (port === undefined || this.byFd[meta[o]!] !== port) continue;
      const len = meta[o + 1]!;
      if (len < 0) {
        this.socketError(port, errnoError(-len, 'recvmsg'));
        continue;
      }
      // The addon took it only from the socket's connected peer (the upstream).
      const offset = meta[o + 2]!;
      this.receive(port.slot, payloads.subarray(offset, offset + len), null, 0);
    }
  }

  /**
   * After the current turn of the event loop (its answers sent), puts back as many spares of
   * `family` as the turn took: a burst of queries finds its sockets ready next turn, a quiet
   * server keeps a few. The spares stay bound until used (a port nobody was told of). Addon
   * sockets in use count as spares to come: each is recycled with its last answer (discard),
   * and opening one for it as well would only close one of the two then, at the spares' cap
   * (W4 at saturation: 45% of the sockets opened and closed for nothing).
   */
  private queueRefill(family: 4 | 6): void {
    this.taken[family]++;
    if (this.refillQueued[family] || this.spareMax === 0 || this.closed) return;
    this.refillQueued[family] = true;
    setImmediate(() => {
      this.refillQueued[family] = false;
      const target = Math.min(this.spareMax, Math.max(MIN_SPARE_SOCKETS, this.taken[family]));
      this.taken[family] = 0;
      const spares = this.spares[family];
      const coming = this.canRecycle() ? this.open[family].length : 0;
      while (!this.closed && spares.length + coming < target) {
        const port = this.openSocket(family);
        if (port === null) break;
        spares.push(port);
      }
    });
  }

  /**
   * A socket for a query to `upstream`: with port reuse, one of its live ports at random once
   * it has LIVE_PORTS of them; else a spare, a new one, or (at the cap) a random one in use to
   * the same upstream.
   */
  private port(upstream: Endpoint): Port | null {
    if (this.portReuse > 1) {
      const live = this.livePorts.get(upstream);
      if (live !== undefined && live.length >= LIVE_PORTS) {
        const port = live[this.random.next() % live.length]!;
        if (++port.uses >= this.portReuse) this.retire(port);
        return port;
      }
    }
    const family = upstream.family;
    let port = this.spares[family].pop() ?? null;
    if (port === null) {
      port = this.openSocket(family);
      if (port !== null) this.counters.openedOnDemand++;
    }
    this.queueRefill(family);
    if (port === null) return this.sharedPort(upstream);
    port.upstream = upstream;
    port.at = this.open[family].length;
    this.open[family].push(port);
    if (this.portReuse > 1) {
      let live = this.livePorts.get(upstream);
      if (live === undefined) this.livePorts.set(upstream, live = []);
      port.uses = 1;
      port.usedSince = Date.now();
      port.live = live.length;
      live.push(port);
    }
    // No packet is sent: the kernel picks the route now (an unreachable one fails here, told
    // through the 'error' event) and from now on reports ICMP errors for this peer. (Addon
    // sockets: in the same native call as the first send.)
    if (port.socket !== null) port.socket.connect(upstream.port, upstream.host);
    return port;
  }

  /** Takes `port` out of its upstream's live list: no new query uses it; it closes with its last query. */
  private retire(port: Port): void {
    if (port.live < 0) return;
    const live = this.livePorts.get(port.upstream!)!;
    const last = live.pop()!;
    if (last !== port) {
      live[port.live] = last;
      last.live = port.live;
    }
    port.live = -1;
  }

  /**
   * With port reuse, from the sweep: ports in use longer than PORT_LIFE_MS are retired; with
   * nothing in flight (`idle`), every live port is closed (a quiet server keeps none open).
   */
  private retireLivePorts(now: number, idle: boolean): void {
    for (const live of this.livePorts.values()) {
      for (let i = live.length - 1; i >= 0; i--) {
        const port = live[i]!;
        if (!idle && now - port.usedSince < PORT_LIFE_MS) continue;
        this.retire(port);
        if (port.pending === 0) this.discard(port);
      }
    }
  }

  /** At the cap: a random socket in use to the same upstream (answers are told apart by ID). */
  private sharedPort(upstream: Endpoint): Port | null {
    const list = this.open[upstream.family];
    if (list.length === 0) return null;
    const first = this.random.next() % list.length;
    for (let i = 0; i < list.length; i++) {
      const port = list[(first + i) % list.length]!;
      if (port.upstream !== null && port.upstream.port === upstream.port && port.upstream.host === upstream.host) {
        this.counters.shared++;
        return port;
      }
    }
    return null;
  }

  /**
   * A socket that could not bind (out of file descriptors: EMFILE/ENFILE, or of ports) never
   * sends: for a while no more sockets are opened than are open, and queries share those. A
   * connected socket's "unreachable" errors (ICMP, routes) fail its queries at once with the
   * reason; they are upstream failures (the forwarder logs them), not socket errors.
   */
  private socketError(port: Port, err: NodeJS.ErrnoException): void {
    if (err.syscall === 'bind') {
      this.limit = Math.max(1, this.allSockets - 1);
      this.limitedAt = Date.now();
      port.failed = true;
      this.failQueries(port, null);
      this.discard(port);
    } else if (port.upstream !== null) {
      const why = unreachableReason(port.upstream.label, err.code);
      if (why !== null) {
        this.retire(port);
        this.failQueries(port, why);
        return;
      }
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

  /** Every query waiting on `port` gets null (and `why`); the socket is closed with the last. */
  private failQueries(port: Port, why: string | null): void {
    const failed: Pending[] = [];
    this.pending.forEach((entry, key) => {
      if (entry.port !== port) return;
      this.pending.delete(key);
      failed.push(entry);
    });
    for (let i = 0; i < failed.length; i++) this.release(port);
    for (const entry of failed) {
      if (why === null) entry.waiter.udpAnswer(entry.tag, null);
      else entry.waiter.udpAnswer(entry.tag, null, why);
    }
  }

  /**
   * Closes `port` and frees its slot, wherever it is (in use, spare, or failed at bind). An
   * addon socket that was in use goes back to the spares instead while there is room: the
   * addon releases its port and empties it (upRecycle), and its next query leaves from a new
   * random port, as from a new socket, for a connect and a read instead of a close, a socket
   * and an epoll_ctl (docs/performance.md, "2026-12-03, 14:00"). It comes back as a new Port
   * object, so that an answer already read for the old one (receiveNative) is not taken as
   * the new one's.
   */
  private discard(port: Port): void {
    if (this.slots[port.slot] !== port) return;
    this.retire(port);
    const recycle = port.at >= 0 && this.recycleNative(port);
    if (!recycle) {
      this.slots[port.slot] = null;
      this.freeSlots.push(port.slot);
    }
    if (port.at >= 0) {
      const list = this.open[port.family];
      const last = list.pop()!;
      if (last !== port) {
        list[port.at] = last;
        last.at = port.at;
      }
      port.at = -1;
    } else {
      const spares = this.spares[port.family];
      const at = spares.indexOf(port);
      if (at >= 0) spares.splice(at, 1);
    }
    if (recycle) {
      const spare = newPort(null, port.fd, port.slot, port.family);
      port.fd = -1;
      this.slots[spare.slot] = spare;
      this.byFd[spare.fd] = spare;
      this.spares[spare.family].push(spare);
      this.counters.socketsRecycled++;
    } else if (port.socket !== null) port.socket.close();
    else if (port.fd >= 0) {
      this.byFd[port.fd] = undefined;
      this.nativeSet!.addon.upCloseSocket(this.nativeSet!.handle, port.fd);
      port.fd = -1;
    }
  }

  /** Whether sockets are recycled (the addon's, one that has upRecycle, spares allowed). */
  private canRecycle(): boolean {
    return this.nativeAddon !== null && this.nativeAddon.upRecycle !== undefined && this.spareMax > 0;
  }

  /** Whether `port` (an addon socket in use) was made ready for another query: see discard. */
  private recycleNative(port: Port): boolean {
    if (port.socket !== null || port.fd < 0 || port.failed || this.closed || !this.canRecycle()) return false;
    if (this.spares[port.family].length >= this.spareMax) return false;
    const { addon, handle } = this.nativeSet!;
    return addon.upRecycle!(handle, port.fd) === 0;
  }

  /** One query less on `port`; with none left (and not live for more) its socket is closed and the slot freed. */
  private release(port: Port): void {
    if (--port.pending > 0 || port.live >= 0) return;
    this.discard(port);
  }

  /**
   * Sends `msg` (its ID is overwritten) to `upstream`; `done` gets the response, or null at
   * `expiresAt` (a Date.now() value) or when the send fails — with `why` when the upstream is
   * unreachable (said by the kernel, at once). If no answer has come by `retryAt`, `retry` is
   * called (the caller asks again) while this try keeps waiting: a late answer is still taken.
   * Returns a handle for `cancel`, or -1 when nothing was sent.
   */
  send(upstream: Endpoint, msg: Buffer, qnameKey: string, qtype: number, qclass: number, expiresAt: number,
    done: (response: Buffer | null, why?: string) => void, retryAt = Infinity, retry: (() => void) | null = null): number {
    return this.sendTry(upstream, msg, qnameKey, qtype, qclass, expiresAt, new CallbackWaiter(done, retry), 0, retry === null ? Infinity : retryAt);
  }

  /** `send` for a caller that waits on many tries (the forwarder): `waiter` is told, with `tag`, what `done` and `retry` would be. */
  sendTry(upstream: Endpoint, msg: Buffer, qnameKey: string, qtype: number, qclass: number, expiresAt: number,
    waiter: UdpWaiter, tag: number, retryAt: number): number {
    if (this.closed) {
      waiter.udpAnswer(tag, null);
      return -1;
    }
    const port = this.port(upstream);
    if (port === null) {
      waiter.udpAnswer(tag, null);
      return -1;
    }
    let id = this.random.next();
    let key = port.slot * 65536 + id;
    for (let tries = 0; this.pending.has(key) && tries < 16; tries++) {
      id = this.random.next();
      key = port.slot * 65536 + id;
    }
    if (this.pending.has(key)) {
      if (port.pending === 0) this.discard(port);
      waiter.udpAnswer(tag, null);
      return -1;
    }
    msg.writeUInt16BE(id, 0);
    const entry: Pending = { port, upstream, qnameKey, qtype, qclass, expiresAt, waiter, tag, retryAt };
    this.pending.set(key, entry);
    port.pending++;
    if (port.socket === null) this.sendNative(port, upstream, msg, key, entry);
    else try {
      port.socket.send(msg, (err) => {
        if (err) this.sendFailed(key, entry, err);
      });
    } catch {
      // The connect failed (no route...): the socket is not connected, so send() refuses the
      // call; the connect's error comes next tick through 'error' and fails this query with the reason.
    }
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweepTimer.unref();
    }
    return key;
  }

  /**
   * The addon's connect (with the first query) and send in one call. A failure is told as
   * dgram tells it, after this call returns: a failed connect as a socket error (unreachable
   * routes fail the socket's queries with the reason), a failed send to the query's callback.
   */
  private sendNative(port: Port, upstream: Endpoint, msg: Buffer, key: number, entry: Pending): void {
    const { addon, handle } = this.nativeSet!;
    let status: number;
    if (port.connected) status = addon.upConnectSend(handle, port.fd, null, 0, msg);
    else {
      port.connected = true;
      status = addon.upConnectSend(handle, port.fd, upstream.host, upstream.port, msg);
    }
    if (status === 0) return;
    const connectFailed = status > -2000;
    const err = errnoError(connectFailed ? -status - 1000 : -status - 2000, connectFailed ? 'connect' : 'send');
    process.nextTick(() => {
      if (connectFailed) {
        if (this.slots[port.slot] === port) this.socketError(port, err);
      } else this.sendFailed(key, entry, err);
    });
  }

  /** A send the kernel refused: the try fails now (with the reason when the upstream is unreachable). */
  private sendFailed(key: number, entry: Pending, err: NodeJS.ErrnoException): void {
    if (this.pending.get(key) !== entry) return;
    const why = unreachableReason(entry.upstream.label, err.code);
    if (why !== null) {
      // The kernel's word on the peer holds for every query on this connected socket: an ICMP
      // error that came back for an earlier query (on loopback, within its own send) is
      // reported to the next send instead, and read from the socket by nobody. With several
      // queries on a port (the cap, --upstream-port-reuse) they all fail now, not at their deadline.
      this.retire(entry.port);
      this.failQueries(entry.port, why);
      return;
    }
    this.pending.delete(key);
    this.release(entry.port);
    entry.waiter.udpAnswer(entry.tag, null);
  }

  /** Stops waiting for a try whose query was answered by another one. */
  cancel(handle: number): void {
    const entry = this.pending.get(handle);
    if (entry === undefined) return;
    this.pending.delete(handle);
    this.release(entry.port);
  }

  /** `address` null: the source was checked already (the addon's sockets). */
  private receive(slot: number, msg: Buffer, address: string | null, port: number): void {
    if (msg.length < 12) return;
    const key = slot * 65536 + msg.readUInt16BE(0);
    const entry = this.pending.get(key);
    if (entry === undefined) return;
    // A reply from elsewhere, or to another question, is spoofed or stale: ignore it and
    // keep waiting for the real one. (A connected socket gets only its peer's datagrams;
    // checked all the same.)
    if (address !== null && (port !== entry.upstream.port || address !== entry.upstream.host)) return;
    if (!answersQuestion(msg, entry.qnameKey, entry.qtype, entry.qclass)) return;
    this.pending.delete(key);
    this.release(entry.port);
    entry.waiter.udpAnswer(entry.tag, msg);
  }

  private sweep(): void {
    const now = Date.now();
    // A full scan: tries have different retransmission times, so there is no order to exploit.
    // The table holds only what is in flight; even 100,000 entries (a dead upstream under
    // 8,000 new names a second) scan in ~1.5 ms, a few per cent of a core at this period.
    this.pending.forEach((entry, key) => {
      if (entry.expiresAt <= now) {
        this.pending.delete(key);
        this.release(entry.port);
        entry.waiter.udpAnswer(entry.tag, null);
      } else if (entry.retryAt <= now) {
        entry.retryAt = Infinity;
        entry.waiter.udpRetry(entry.tag);
      }
    });
    if (this.portReuse > 1) this.retireLivePorts(now, this.pending.size === 0);
    if (this.pending.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  close(): void {
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const waiting = this.pending.values();
    this.pending.clear();
    for (const entry of waiting) entry.waiter.udpAnswer(entry.tag, null);
    for (const port of this.slots) {
      if (port === null) continue;
      if (port.socket !== null) port.socket.close();
      else if (port.fd >= 0) this.nativeSet!.addon.upCloseSocket(this.nativeSet!.handle, port.fd);
    }
    this.slots.fill(null);
    this.byFd.length = 0;
    if (this.nativeSet !== null) this.nativeSet.addon.upClose(this.nativeSet.handle);
    this.nativeSet = null;
    this.open[4].length = 0;
    this.open[6].length = 0;
    this.livePorts.clear();
    this.spares[4].length = 0;
    this.spares[6].length = 0;
  }
}
