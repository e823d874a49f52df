// A UDP listener on the optional native addon in ./batch-udp/ (recvmmsg/sendmmsg): one
// system call and one JavaScript call per batch of datagrams instead of per datagram. Same
// shape as udp.ts's listener; where the addon is not built, loadBatchUdp() says why and the
// server stays on node:dgram.
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import type { Transport } from './transport.js';
import type { Endpoint } from './endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';
import { listenUdp, type QueryHandler, type UdpListener } from './udp.js';

/** What the compiled addon (src/net/batch-udp/batch_udp.c) exports. */
export interface BatchUdpAddon {
  /**
   * Words (uint32) per datagram in `meta`: offset, length, port, family, 16 address bytes.
   * `payloads` is a pool shared by many batches (offsets are into it): read a datagram as
   * `payloads.subarray(offset, offset + length)`; its bytes are never written again.
   */
  readonly metaWords: number;
  open(family: 4 | 6, host: string, port: number, reusePort: boolean, batch: number, bufferBytes: number,
    onBatch: (count: number, payloads: Buffer) => void, onError: (err: NodeJS.ErrnoException) => void): OpenSocket;
  /** 0 queued, 1 dropped (queue full and the socket would block), < 0 a negated errno. */
  send(handle: SocketHandle, answer: Buffer, address: string, port: number): number;
  /** Sends what is queued; returns how many still wait for the socket to become writable. */
  flush(handle: SocketHandle): number;
  close(handle: SocketHandle, onClosed: () => void): void;
  /** `stale`: datagrams dropped unread for waiting too long (absent in addons built before setMaxWait). */
  stats(handle: SocketHandle): { dropped: number; queued: number; stale?: number };
  /**
   * Datagrams that waited longer than `ms` in the receive queue (kernel timestamps) are
   * dropped unread; 0 turns it off. False when the kernel will not timestamp. Absent in
   * addons built before it: then nothing is dropped.
   */
  setMaxWait?(handle: SocketHandle, ms: number): boolean;
  /** The interface of a link-local address's scope id ("eth0"), or the id as text. */
  interfaceName(index: number): string;
  /**
   * Puts the calling thread in the SCHED_IDLE class: 0, or a negated errno (absent in addons
   * built before it). For the history's threads (src/observe/history/thread-priority.ts).
   */
  idleThread?(): number;
  /** Upstream sockets (absent in addons built before them): see UpstreamSocketsAddon. */
  upOpen?: UpstreamSocketsAddon['upOpen'];
}

declare const upstreamSetHandle: unique symbol;
export type UpstreamSetHandle = { readonly [upstreamSetHandle]: true };

/**
 * The forwarder's one-socket-per-query UDP in the addon (batch_udp.c, "upstream sockets"):
 * a set of sockets in one private epoll set, their answers handed over in one call.
 */
export interface UpstreamSocketsAddon {
  /** `onAnswers(count, payloads)`; `meta` holds 3 int32 per answer: fd, length (or a negated errno), offset in `payloads` (a pool, as open()'s). */
  upOpen(onAnswers: (count: number, payloads: Buffer) => void): { handle: UpstreamSetHandle; meta: ArrayBuffer };
  /** A socket bound to a random port (port 0) and watched: its fd, or a negated errno (EMFILE...). */
  upSocket(handle: UpstreamSetHandle, family: 4 | 6): number;
  /** Connects (when `host` is given) and sends: 0, -(1000 + errno) for a failed connect, -(2000 + errno) for a failed send. */
  upConnectSend(handle: UpstreamSetHandle, fd: number, host: string | null, port: number, msg: Buffer | null): number;
  upCloseSocket(handle: UpstreamSetHandle, fd: number): void;
  /**
   * Readies a socket whose queries are done for the next one, without closing it: its
   * association and its port are released (the next connect picks a new random port) and
   * whatever is queued on it is thrown away. 0, or a negated errno: then close it. Absent in
   * addons built before it.
   */
  upRecycle?(handle: UpstreamSetHandle, fd: number): number;
  /** Stops watching; the sockets are closed by the caller first. */
  upClose(handle: UpstreamSetHandle): void;
}
declare const socketHandle: unique symbol;
export type SocketHandle = { readonly [socketHandle]: true };
interface OpenSocket { handle: SocketHandle; meta: ArrayBuffer; port: number }

export type BatchUdpLoad = { addon: BatchUdpAddon; reason: null } | { addon: null; reason: string };

const ADDON_PACKAGE = 'sinkhole-batch-udp';
let loaded: BatchUdpLoad | undefined;

/**
 * Loads the addon once. `specifier` is for tests (a package that is not there). Off with
 * SINKHOLE_BATCH_UDP=off. Never throws: the reason is a line for the startup log.
 */
export function loadBatchUdp(specifier = ADDON_PACKAGE): BatchUdpLoad {
  const isDefault = specifier === ADDON_PACKAGE;
  if (isDefault && loaded !== undefined) return loaded;
  let result: BatchUdpLoad;
  if (process.env.SINKHOLE_BATCH_UDP === 'off') {
    result = { addon: null, reason: 'batched UDP turned off (SINKHOLE_BATCH_UDP=off)' };
  } else if (process.platform !== 'linux') {
    result = { addon: null, reason: `batched UDP needs Linux (recvmmsg), this is ${process.platform}` };
  } else {
    try {
      const addon = createRequire(import.meta.url)(specifier) as BatchUdpAddon;
      result = typeof addon.open === 'function' && addon.metaWords === META_WORDS
        ? { addon, reason: null }
        : { addon: null, reason: `${specifier} is not the batched-UDP addon this sinkhole expects; rebuild it with "npm ci"` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      result = {
        addon: null,
        reason: code === 'MODULE_NOT_FOUND'
          ? `batched UDP addon not built (${specifier}: no compiler at install time?); rebuild with "npm ci" where gcc, make and python3 are installed`
          : `batched UDP addon ${specifier} failed to load: ${(err as Error).message.split('\n')[0]}`,
      };
    }
  }
  if (isDefault) loaded = result;
  return result;
}

const META_WORDS = 8;

export interface BatchUdpOptions {
  /** Datagrams read per recvmmsg (1..1024). */
  batch?: number;
  /** SO_REUSEPORT: each cluster worker its own socket on the same address (any Node version). */
  reusePort?: boolean;
  /** Keep a string per IPv4 client address instead of building one per datagram. */
  addressCache?: boolean;
  /** The addon to use (tests); by default loadBatchUdp()'s. */
  addon?: BatchUdpAddon;
  /** Drop queries that waited longer than this in the receive queue (udp-max-wait); 0 or absent: never. */
  maxWaitMs?: number;
}

const ADDRESS_CACHE_MAX = 65536;

export class BatchUdpListener implements Transport {
  readonly udp = true;
  /** Set on shutdown: new queries are ignored while the ones in flight are answered. */
  draining = false;
  /** The bound port (the endpoint's, or the one the kernel chose for port 0). */
  readonly port: number;
  private inBatch = false;
  private flushScheduled = false;
  private closed: Promise<void> | null = null;
  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    if (this.closed === null) this.addon.flush(this.socket.handle);
  };
  private drops = 0;
  /** Batches read (one recvmmsg and one call into JavaScript each), for tests and stats. */
  batches = 0;

  constructor(private readonly addon: BatchUdpAddon, private readonly socket: OpenSocket, readonly endpoint: Endpoint,
    private readonly onError: (err: Error) => void) {
    this.port = socket.port;
  }

  send(answer: Buffer, address: string, port: number): void {
    if (this.closed !== null) return;
    const status = this.addon.send(this.socket.handle, answer, address, port);
    if (status === 0) {
      // Answers given while a batch is handled go out in one sendmmsg when it ends; others
      // (forwarded answers, arriving on upstream sockets) on the next turn of the loop.
      if (!this.inBatch && !this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flushLater);
      }
    } else if (status === 1) {
      // The send queue is full and the kernel's buffer too: UDP may drop, but say so (rarely).
      if (this.drops++ % 10000 === 0) this.onError(sendError('ENOBUFS', `send queue full on ${this.endpoint.label}: ${this.drops} answers dropped`));
    } else {
      this.onError(sendError(status === -22 ? 'EINVAL' : status === -90 ? 'EMSGSIZE' : `errno ${-status}`,
        `cannot send ${answer.length} bytes to ${address}:${port}`));
    }
  }

  /** Answers dropped because the socket could not take them. */
  get dropped(): number {
    return this.drops;
  }

  /** Queries dropped unread because they waited longer than maxWaitMs in the receive queue (the last count once closed). */
  get stale(): number {
    if (this.closed === null) this.staleSeen = this.addon.stats(this.socket.handle).stale ?? 0;
    return this.staleSeen;
  }
  private staleSeen = 0;

  close(): Promise<void> {
    this.closed ??= new Promise((resolve) => this.addon.close(this.socket.handle, resolve));
    return this.closed;
  }

  /** Called by the addon once per batch; see batch_udp.c for the layout of `meta`. */
  onBatch(count: number, payloads: Buffer, meta: Uint32Array, metaBytes: Uint8Array, handle: QueryHandler, cache: Map<number, string> | null): void {
    this.batches++;
    if (this.draining) return;
    this.inBatch = true;
    let failure: unknown = null;
    try {
      for (let i = 0, o = 0; i < count; i++, o += META_WORDS) {
        const offset = meta[o]!;
        const msg = payloads.subarray(offset, offset + meta[o + 1]!);
        const family = meta[o + 3]!;
        const address = family === 4 ? ipv4Text(meta[o + 4]!, cache)
          : family === 6 ? ipv6Text(metaBytes, (o + 4) * 4)
          : `${ipv6Text(metaBytes, (o + 4) * 4)}%${this.addon.interfaceName(family >>> 8)}`;  // link-local, with its scope
        try {
          handle(msg, address, meta[o + 2]!, this);
        } catch (err) {
          // As with dgram, a throwing handler is an uncaught exception, but the rest of the
          // batch is answered first.
          failure ??= err;
        }
        if (this.draining) break;
      }
    } finally {
      this.inBatch = false;
    }
    if (failure !== null) throw failure;
  }
}

function sendError(code: string, message: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${message} (${code})`);
  err.code = code;
  err.syscall = 'send';
  return err;
}

function ipv4Text(n: number, cache: Map<number, string> | null): string {
  if (cache === null) return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  let text = cache.get(n);
  if (text === undefined) {
    if (cache.size >= ADDRESS_CACHE_MAX) cache.clear();
    text = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    cache.set(n, text);
  }
  return text;
}

/**
 * An IPv6 address as dgram's rinfo.address shows it (libuv's inet_ntop: lower-case hex, the
 * longest run of two or more zero groups as "::", the first of equal runs, and the IPv4
 * forms ::a.b.c.d and ::ffff:a.b.c.d).
 */
export function ipv6Text(bytes: Uint8Array, at: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!);
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestBase) {
      out += ':';
      i += bestLen - 1;
      if (i === 7) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 7 && words[7] !== 1) || (bestLen === 5 && words[5] === 0xffff))) {
      out += `${bytes[at + 12]}.${bytes[at + 13]}.${bytes[at + 14]}.${bytes[at + 15]}`;
      break;
    }
    out += words[i]!.toString(16);
  }
  return out;
}

/**
 * Listens on one UDP endpoint with the addon; the same contract as listenUdp (bind errors
 * are a StartupError with one line; later socket errors go to onError and never end the
 * server). Throws when the addon is not there: use loadBatchUdp() or listenUdpPreferBatched.
 */
export async function listenUdpBatched(endpoint: Endpoint, handle: QueryHandler, onError: (err: Error) => void,
  options: BatchUdpOptions = {}): Promise<BatchUdpListener> {
  const addon = options.addon ?? loadBatchUdp().addon;
  if (addon === null) throw new Error(loadBatchUdp().reason ?? 'batched UDP addon not available');
  const cache = options.addressCache === false ? null : new Map<number, string>();
  let listener: BatchUdpListener | null = null;
  let meta: Uint32Array | null = null;
  let metaBytes: Uint8Array | null = null;
  let socket: OpenSocket;
  try {
    socket = addon.open(endpoint.family, endpoint.host, endpoint.port, options.reusePort ?? cluster.isWorker, options.batch ?? 64,
      4 * 1024 * 1024,
      (count, payloads) => listener!.onBatch(count, payloads, meta!, metaBytes!, handle, cache),
      (err) => onError(err));
  } catch (err) {
    throw new StartupError(bindErrorMessage(err as NodeJS.ErrnoException, endpoint, 'UDP'));
  }
  meta = new Uint32Array(socket.meta);
  metaBytes = new Uint8Array(socket.meta);
  listener = new BatchUdpListener(addon, socket, endpoint, onError);
  if ((options.maxWaitMs ?? 0) > 0 && addon.setMaxWait?.(socket.handle, options.maxWaitMs!) === false) {
    onError(new Error(`cannot timestamp datagrams on ${endpoint.label}: udp-max-wait is not in force`));
  }
  return listener;
}

export type AnyUdpListener = UdpListener | BatchUdpListener;

/**
 * The batched listener where the addon is built, else node:dgram's. `reason` is null on the
 * batched path, else the line to log once at startup ("... ; using node:dgram").
 */
export async function listenUdpPreferBatched(endpoint: Endpoint, handle: QueryHandler, onError: (err: Error) => void,
  load: BatchUdpLoad = loadBatchUdp(), options: { maxWaitMs?: number } = {}): Promise<{ listener: AnyUdpListener; batched: boolean; reason: string | null }> {
  if (load.addon !== null) {
    return { listener: await listenUdpBatched(endpoint, handle, onError, { addon: load.addon, ...options }), batched: true, reason: null };
  }
  return { listener: await listenUdp(endpoint, handle, onError), batched: false, reason: `${load.reason}; using node:dgram` };
}
