// DNS over TLS to one upstream (RFC 7858): one connection kept open and reused, queries
// pipelined on it with the 2-byte length framing of RFC 7766, each with a fresh random ID;
// answers (in any order) matched by ID and checked against the question. The connection is
// opened on demand, closed when idle, and reopened after a failure with backoff (queries
// meanwhile fail at once with the reason, so the forwarder moves on to the next upstream).
import { Random16 } from './random16.js';
import { SlotMap } from '../slot-map.js';
import { connect, rootCertificates, type TLSSocket, type ConnectionOptions } from 'node:tls';
import { answersQuestion } from '../../../wire/response.js';
import type { EncryptedUpstream } from '../upstream-url.js';
import {
  Connector, describeError, type EncryptedOptions, type EncryptedTransport, type ExchangeDone, type UpstreamQuestion,
} from './encrypted.js';

const SWEEP_MS = 25;

interface Pending {
  q: UpstreamQuestion;
  deadline: number;
  done: ExchangeDone;
  /** The framed query, kept to send again once if the connection closes under it. */
  frame: Buffer;
  resent: boolean;
}

/** The trust store: the system's CAs plus --upstream-ca (giving `ca` alone would replace them). */
export function trustedCas(extra: Buffer[] | undefined): string[] | undefined {
  if (extra === undefined || extra.length === 0) return undefined;
  return [...rootCertificates, ...extra.map((b) => b.toString())];
}

export class TlsUpstream implements EncryptedTransport {
  readonly label: string;
  /** Connections opened successfully so far (for tests and metrics). */
  handshakes = 0;
  private socket: TLSSocket | null = null;
  private connected = false;
  /** Queries in flight by ID (a SlotMap: see ../slot-map.ts for why not a Map). */
  private readonly pending = new SlotMap<number, Pending>();
  /** Frames written before the handshake finished. */
  private queued: Buffer[] = [];
  private received: Buffer | null = null;
  private readonly connector: Connector;
  private readonly ca: string[] | undefined;
  private session: Buffer | undefined;
  private sweepTimer: NodeJS.Timeout | null = null;
  private corked = false;
  private closed = false;
  private readonly random = new Random16(2048);

  constructor(readonly upstream: EncryptedUpstream, options: EncryptedOptions = {}) {
    this.label = upstream.label;
    this.connector = new Connector(upstream, options);
    this.ca = trustedCas(options.ca);
  }

  /** Queries waiting for an answer (for tests and metrics). */
  get inFlight(): number {
    return this.pending.size;
  }

  exchange(msg: Buffer, q: UpstreamQuestion, deadline: number, done: ExchangeDone): void {
    if (this.closed) {
      done(null, `${this.label}: closed`);
      return;
    }
    const refusal = this.connector.refusal(this.connected);
    if (refusal !== null) {
      done(null, refusal);
      return;
    }
    let id = this.random.next();
    for (let tries = 0; this.pending.has(id) && tries < 32; tries++) id = this.random.next();
    if (this.pending.has(id)) {
      done(null, `${this.label}: too many queries in flight`);
      return;
    }
    msg.writeUInt16BE(id, 0);
    const frame = Buffer.allocUnsafe(2 + msg.length);
    frame.writeUInt16BE(msg.length, 0);
    msg.copy(frame, 2);
    this.pending.set(id, { q, deadline, done, frame, resent: false });
    this.send(frame);
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweepTimer.unref();
    }
  }

  private send(frame: Buffer): void {
    if (!this.connected) {
      this.queued.push(frame);
      if (!this.connector.connecting) this.connector.open(() => this.closed, (ip) => this.connectTo(ip), (failure) => this.fail(failure, false));
      return;
    }
    const socket = this.socket!;
    // Queries forwarded in one turn of the event loop leave in as few TLS records as possible.
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(frame);
  }

  private connectTo(ip: string): void {
    const options: ConnectionOptions = {
      host: ip, port: this.upstream.port, servername: this.upstream.serverName, ca: this.ca,
      session: this.session, ALPNProtocols: ['dot'],
    };
    const socket = connect(options);
    socket.setNoDelay(true);
    this.socket = socket;
    this.connected = false;
    this.received = null;
    const timer = this.connector.handshakeTimer('TLS', (failure) => {
      if (this.socket === socket && !this.connected) this.drop(socket, failure, false);
    });
    socket.on('session', (session: Buffer) => {
      this.session = session;
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (this.socket !== socket) return;
      this.connected = true;
      this.handshakes++;
      this.connector.succeeded();
      socket.setTimeout(this.connector.idleMs, () => {
        // Idle: nothing asked lately. With queries in flight, their deadlines decide instead.
        if (this.pending.size === 0 && this.socket === socket) this.drop(socket, '', true);
      });
      const queued = this.queued;
      this.queued = [];
      socket.cork();
      for (const frame of queued) socket.write(frame);
      socket.uncork();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err: Error) => {
      clearTimeout(timer);
      if (this.socket === socket) this.drop(socket, `${this.label}: ${describeError(err)}`, this.connected);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (this.socket === socket) this.drop(socket, `${this.label}: ${this.connected ? 'closed the connection' : 'closed the connection during the TLS handshake'}`, this.connected);
    });
  }

  /**
   * The connection is gone. After a good handshake (the server closed an idle or busy
   * connection, as RFC 7766 allows) the unanswered queries are sent once more on a new one;
   * a failed handshake fails them all and starts the backoff.
   */
  private drop(socket: TLSSocket, failure: string, wasConnected: boolean): void {
    this.socket = null;
    this.connector.ended();
    this.connected = false;
    this.received = null;
    socket.destroy();
    if (wasConnected) {
      const again: Pending[] = [];
      this.pending.forEach((entry, id) => {
        if (entry.resent) {
          this.pending.delete(id);
          entry.done(null, failure);
        } else {
          entry.resent = true;
          again.push(entry);
        }
      });
      this.queued = [];
      for (const entry of again) this.send(entry.frame);
      return;
    }
    this.fail(failure, true);
  }

  private fail(failure: string, forgetAddress: boolean): void {
    this.connector.failed(failure, forgetAddress);
    this.queued = [];
    const waiting = this.pending.values();
    this.pending.clear();
    for (const entry of waiting) entry.done(null, failure);
  }

  private receive(chunk: Buffer): void {
    let data = this.received === null ? chunk : Buffer.concat([this.received, chunk]);
    while (data.length >= 2) {
      const length = data.readUInt16BE(0);
      if (data.length < 2 + length) break;
      const answer = data.subarray(2, 2 + length);
      data = data.subarray(2 + length);
      if (answer.length < 12) continue;
      const id = answer.readUInt16BE(0);
      const entry = this.pending.get(id);
      // An answer to nothing we asked, or to another question: ignore it, keep waiting.
      if (entry === undefined || !answersQuestion(answer, entry.q.qnameKey, entry.q.qtype, entry.q.qclass)) continue;
      this.pending.delete(id);
      // Copy: the chunk may hold other answers, and the caller may keep this one (cache).
      entry.done(Buffer.from(answer), '');
    }
    this.received = data.length > 0 ? data : null;
  }

  private sweep(): void {
    const now = Date.now();
    this.pending.forEach((entry, id) => {
      if (entry.deadline <= now) {
        this.pending.delete(id);
        entry.done(null, `${this.label} did not answer in time`);
      }
    });
    if (this.pending.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }


  close(): void {
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
    const waiting = this.pending.values();
    this.pending.clear();
    for (const entry of waiting) entry.done(null, `${this.label}: closed`);
  }
}
