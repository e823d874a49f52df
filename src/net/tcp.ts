// A TCP listener (RFC 7766): several queries per connection, each answered as soon as it is
// ready (possibly out of order). Defences, so that no client can lock others out of TCP:
// - a cap on open connections per listen address, and a lower one per client address;
// - at either cap, the connection idle the longest is closed to make room (RFC 7766
//   section 6.2.3) and only when none is idle is the new one refused;
// - an idle timeout counted from the last whole message or answer, which a trickle of
//   bytes does not reset, and a deadline for each message from its first byte (slowloris);
// - reading pauses while a client has many queries waiting or does not read its answers.
// A client that half-closes (shuts down its writing side after its queries, as some stub
// resolvers do) still gets every answer; then the server closes its side.
import cluster from 'node:cluster';
import { createServer, type Server, type Socket } from 'node:net';
import type { Transport } from './transport.js';
import type { Endpoint } from './endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';
import type { QueryHandler } from './udp.js';

export interface TcpOptions {
  /** Close a connection with nothing to do for this long (no query, no answer, no message under way). */
  idleTimeoutMs: number;
  /** Open connections on this listen address at most. */
  maxConnections: number;
  /** Open connections from one client address at most (default 32, never above maxConnections). */
  maxConnectionsPerClient?: number;
  /** A message must arrive whole within this long of its first byte (default 2000 ms). */
  messageTimeoutMs?: number;
  /** Queries of one connection waiting for their answers at most; reading pauses beyond (default 64). */
  maxPipelined?: number;
}

export const TCP_DEFAULTS = { maxConnectionsPerClient: 32, messageTimeoutMs: 2000, maxPipelined: 64 } as const;

/**
 * A query that was handed on and never answered (the resolver drops responses sent to it)
 * must not keep a connection open for ever: past this long without any answer or message,
 * a connection with queries "waiting" is closed too. Longer than the forwarder's budget (4 s).
 */
const ANSWER_GRACE_MS = 6000;

/** Why connections were closed or refused: counters for metrics. */
export interface TcpCounters {
  accepted: number;
  /** New connections refused: at a cap with no idle connection to close. */
  refused: number;
  /** Idle connections closed to make room for a new one (RFC 7766 6.2.3). */
  evicted: number;
  idleTimeouts: number;
  /** Closed because a message did not arrive whole within messageTimeoutMs. */
  messageTimeouts: number;
  /** Closed with queries still counted as waiting after ANSWER_GRACE_MS of silence. */
  stalled: number;
}

class TcpConnection implements Transport {
  readonly udp = false;
  /** Bytes received and not yet handed on: a message under way, or messages held back (maxPipelined). */
  private buffered: Buffer | null = null;
  /** Date.now() of the last whole message in or answer out (not of every byte). */
  lastActivity: number;
  /** Date.now() of the first byte of the message under way; 0 when none is. */
  partialSince = 0;
  /** Queries handed to the resolver and not yet answered. */
  pending = 0;
  /** The client shut down its writing side: answer what is pending, then close. */
  ended = false;
  closed = false;
  private heldBack = false;
  private processing = false;

  /** Address and port as they were at connection time: after a reset node no longer knows them. */
  constructor(readonly socket: Socket, readonly address: string, readonly port: number, private readonly handle: QueryHandler,
    private readonly listener: TcpListener) {
    this.lastActivity = Date.now();
  }

  get idle(): boolean {
    return this.pending === 0 && this.partialSince === 0 && this.buffered === null;
  }

  send(answer: Buffer): void {
    this.settle(answer);
  }

  unanswered(): void {
    this.settle(null);
  }

  /** One query less to wait for: its answer (sent here) or nothing (null). */
  private settle(answer: Buffer | null): void {
    if (this.pending > 0) this.pending--;
    this.lastActivity = Date.now();
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (answer !== null) {
      // One write per answer: the length and the message in one frame.
      const frame = Buffer.allocUnsafe(2 + answer.length);
      frame.writeUInt16BE(answer.length, 0);
      answer.copy(frame, 2);
      // A client that does not read its answers is not read from either, until it does ('drain').
      if (!socket.write(frame)) socket.pause();
    }
    if (this.heldBack && !this.processing && this.pending < this.listener.maxPipelined) {
      this.heldBack = false;
      this.process();
      if (!this.heldBack && !socket.writableNeedDrain) socket.resume();
    }
    if (this.ended && this.pending === 0 && this.buffered === null) socket.end();
  }

  receive(chunk: Buffer): void {
    if (this.ended) return;
    this.buffered = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
    if (!this.heldBack) this.process();
  }

  /** Hands on every whole message, up to maxPipelined waiting for answers; the rest waits in `buffered`. */
  private process(): void {
    let data = this.buffered;
    if (data === null) return;
    this.processing = true;
    let whole = false;
    const max = this.listener.maxPipelined;
    while (data.length >= 2 && this.pending < max) {
      const length = data.readUInt16BE(0);
      if (data.length < 2 + length) break;
      // Copy: the resolver may keep the message (and rewrite its ID) while it waits upstream.
      const msg = Buffer.from(data.subarray(2, 2 + length));
      data = data.subarray(2 + length);
      whole = true;
      if (this.listener.draining) continue;
      this.pending++;
      this.handle(msg, this.address, this.port, this);
      if (this.closed) break;
    }
    this.processing = false;
    const now = Date.now();
    if (whole) this.lastActivity = now;
    const held = data.length >= 2 && data.length >= 2 + data.readUInt16BE(0);
    // Nothing left, or the start of a message the client will never finish (it half-closed).
    if (data.length === 0 || (this.ended && !held)) {
      this.buffered = null;
      this.partialSince = 0;
      return;
    }
    this.buffered = data;
    if (held) {
      // Whole messages held back: waiting on us, not on the client.
      this.partialSince = 0;
      if (!this.heldBack) {
        this.heldBack = true;
        this.socket.pause();
      }
    } else if (whole || this.partialSince === 0) {
      this.partialSince = now;
    }
  }

  /** The client half-closed: a message cut short is dropped; answers still go out. */
  clientEnded(): void {
    this.ended = true;
    if (this.buffered !== null && !this.heldBack) {
      this.buffered = null;
      this.partialSince = 0;
    }
    if (this.pending === 0 && this.buffered === null) this.socket.end();
  }

  drained(): void {
    if (!this.heldBack) this.socket.resume();
  }
}

export class TcpListener {
  draining = false;
  /** Open connections, oldest first. */
  readonly connections = new Set<TcpConnection>();
  /** Open connections per client address. */
  private readonly perClient = new Map<string, number>();
  readonly counters: TcpCounters = { accepted: 0, refused: 0, evicted: 0, idleTimeouts: 0, messageTimeouts: 0, stalled: 0 };
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
  readonly maxPipelined: number;
  private readonly idleTimeoutMs: number;
  private readonly messageTimeoutMs: number;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(readonly server: Server, readonly endpoint: Endpoint, options: TcpOptions) {
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.maxConnections = Math.max(1, options.maxConnections);
    this.maxConnectionsPerClient = Math.max(1, Math.min(this.maxConnections, options.maxConnectionsPerClient ?? TCP_DEFAULTS.maxConnectionsPerClient));
    this.messageTimeoutMs = options.messageTimeoutMs ?? TCP_DEFAULTS.messageTimeoutMs;
    this.maxPipelined = Math.max(1, options.maxPipelined ?? TCP_DEFAULTS.maxPipelined);
  }

  /** How many connections `address` has open now. */
  connectionsFrom(address: string): number {
    return this.perClient.get(address) ?? 0;
  }

  accept(socket: Socket, handle: QueryHandler): void {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    // Reset before we saw it: nothing to answer, and no address to answer to.
    if (address === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    if (this.draining) {
      socket.destroy();
      return;
    }
    if ((this.perClient.get(address) ?? 0) >= this.maxConnectionsPerClient && !this.evictIdle(address)) {
      this.counters.refused++;
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.maxConnections && !this.evictIdle(null)) {
      this.counters.refused++;
      socket.destroy();
      return;
    }
    this.counters.accepted++;
    const connection = new TcpConnection(socket, address, port, handle, this);
    this.connections.add(connection);
    this.perClient.set(address, (this.perClient.get(address) ?? 0) + 1);
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('end', () => connection.clientEnded());
    socket.on('drain', () => connection.drained());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.forget(connection));
    this.startSweeping();
  }

  /** Closes the connection idle the longest (of `address` only, when given); false when none is idle. */
  private evictIdle(address: string | null): boolean {
    let victim: TcpConnection | null = null;
    for (const c of this.connections) {
      if (!c.idle || (address !== null && c.address !== address)) continue;
      if (victim === null || c.lastActivity < victim.lastActivity) victim = c;
    }
    if (victim === null) return false;
    this.counters.evicted++;
    this.drop(victim);
    return true;
  }

  private drop(connection: TcpConnection): void {
    this.forget(connection);
    connection.socket.destroy();
  }

  /** Bookkeeping at once (not at 'close', which comes later): the slot is free now. */
  private forget(connection: TcpConnection): void {
    if (connection.closed) return;
    connection.closed = true;
    this.connections.delete(connection);
    const n = (this.perClient.get(connection.address) ?? 1) - 1;
    if (n <= 0) this.perClient.delete(connection.address);
    else this.perClient.set(connection.address, n);
  }

  /**
   * One timer per listener, not per connection: every connection's deadline is checked a
   * few times per timeout. A trickle of bytes moves no deadline.
   */
  private startSweeping(): void {
    if (this.sweepTimer !== null) return;
    const period = Math.max(20, Math.min(1000, Math.floor(Math.min(this.idleTimeoutMs, this.messageTimeoutMs) / 4)));
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), period);
    this.sweepTimer.unref();
  }

  private sweep(now: number): void {
    for (const c of this.connections) {
      if (c.partialSince !== 0) {
        if (now - c.partialSince >= this.messageTimeoutMs) {
          this.counters.messageTimeouts++;
          this.drop(c);
        }
      } else if (c.pending === 0) {
        if (now - c.lastActivity >= this.idleTimeoutMs) {
          this.counters.idleTimeouts++;
          this.drop(c);
        }
      } else if (now - c.lastActivity >= Math.max(this.idleTimeoutMs, ANSWER_GRACE_MS)) {
        this.counters.stalled++;
        this.drop(c);
      }
    }
    if (this.connections.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const c of [...this.connections]) this.drop(c);
    });
  }
}

export function listenTcp(endpoint: Endpoint, handle: QueryHandler, options: TcpOptions): Promise<TcpListener> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a client that shuts down its writing side still reads its answers.
    const server = createServer({ noDelay: true, allowHalfOpen: true });
    const listener = new TcpListener(server, endpoint, options);
    server.on('connection', (socket) => listener.accept(socket, handle));
    const onBindError = (err: NodeJS.ErrnoException): void => reject(new StartupError(bindErrorMessage(err, endpoint, 'TCP')));
    server.once('error', onBindError);
    server.listen({ host: endpoint.host, port: endpoint.port, ipv6Only: endpoint.family === 6, exclusive: !cluster.isWorker }, () => {
      server.off('error', onBindError);
      server.on('error', () => undefined);
      resolve(listener);
    });
  });
}
