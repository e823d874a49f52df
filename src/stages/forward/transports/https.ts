// DNS over HTTPS to one upstream (RFC 8484) on node:http2: one session kept open and
// reused, each query a POST of application/dns-message on its own stream, many streams in
// flight at once (up to the server's SETTINGS_MAX_CONCURRENT_STREAMS; beyond that they wait
// here). The message ID is 0, as RFC 8484 asks; the answer is checked against the question.
// A session that fails to connect is retried with backoff; one the server ends (GOAWAY,
// idle close) is simply replaced by a new one for the next query.
import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { answersQuestion } from '../../../wire/response.js';
import type { EncryptedUpstream } from '../upstream-url.js';
import {
  Connector, describeError, type EncryptedOptions, type EncryptedTransport, type ExchangeDone, type UpstreamQuestion,
} from './encrypted.js';
import { trustedCas } from './tls.js';

const SWEEP_MS = 25;
/** The largest DNS message (its length is a 16-bit number). */
const MAX_MESSAGE = 65535;
const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_CONTENT_LENGTH, HTTP2_HEADER_ACCEPT } = constants;

interface Pending {
  msg: Buffer;
  q: UpstreamQuestion;
  deadline: number;
  done: ExchangeDone;
  stream: ClientHttp2Stream | null;
  finished: boolean;
}

export class HttpsUpstream implements EncryptedTransport {
  readonly label: string;
  /** Connections opened successfully so far (for tests and metrics). */
  handshakes = 0;
  private session: ClientHttp2Session | null = null;
  private connected = false;
  /** Queries not yet on a stream: before the handshake, or over the stream limit. */
  private waiting: Pending[] = [];
  private readonly active = new Set<Pending>();
  private readonly connector: Connector;
  private readonly ca: string[] | undefined;
  private readonly authority: string;
  private tlsSession: Buffer | undefined;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(readonly upstream: EncryptedUpstream, options: EncryptedOptions = {}) {
    this.label = upstream.label;
    this.connector = new Connector(upstream, options);
    this.ca = trustedCas(options.ca);
    const host = upstream.serverName;
    this.authority = `https://${host}${upstream.port === 443 ? '' : `:${upstream.port}`}`;
  }

  get inFlight(): number {
    return this.active.size + this.waiting.length;
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
    msg.writeUInt16BE(0, 0);
    const entry: Pending = { msg, q, deadline, done, stream: null, finished: false };
    this.waiting.push(entry);
    this.pump();
    if (this.sweepTimer === null) {
      this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
      this.sweepTimer.unref();
    }
  }

  /** Starts streams for waiting queries while the session has room; opens a session if none. */
  private pump(): void {
    if (!this.connected) {
      if (!this.connector.connecting && this.waiting.length > 0) this.connector.open(() => this.closed, (ip) => this.connectTo(ip), (failure) => this.fail(failure));
      return;
    }
    const session = this.session!;
    const limit = session.remoteSettings.maxConcurrentStreams ?? 100;
    while (this.waiting.length > 0 && this.active.size < limit) {
      const entry = this.waiting.shift()!;
      if (entry.finished) continue;
      this.start(session, entry);
    }
  }

  private start(session: ClientHttp2Session, entry: Pending): void {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request({
        [HTTP2_HEADER_METHOD]: 'POST', [HTTP2_HEADER_PATH]: this.upstream.path,
        [HTTP2_HEADER_CONTENT_TYPE]: 'application/dns-message', [HTTP2_HEADER_ACCEPT]: 'application/dns-message',
        [HTTP2_HEADER_CONTENT_LENGTH]: entry.msg.length,
      });
    } catch (err) {
      // The session is closing (GOAWAY raced us): this query waits for the next one.
      this.waiting.unshift(entry);
      this.lost(session, '', true);
      return;
    }
    entry.stream = stream;
    this.active.add(entry);
    let status = 0;
    let contentType = '';
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('response', (headers) => {
      status = Number(headers[HTTP2_HEADER_STATUS]);
      contentType = String(headers[HTTP2_HEADER_CONTENT_TYPE] ?? '');
    });
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_MESSAGE) {
        this.finish(entry, null, `${this.label}: answer larger than a DNS message`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (status !== 200) {
        this.finish(entry, null, `${this.label}: HTTP status ${status}`);
        return;
      }
      if (!contentType.startsWith('application/dns-message')) {
        this.finish(entry, null, `${this.label}: answered with content-type "${contentType}", not application/dns-message`);
        return;
      }
      const answer = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (!answersQuestion(answer, entry.q.qnameKey, entry.q.qtype, entry.q.qclass)) {
        this.finish(entry, null, `${this.label}: answer does not match the question`);
        return;
      }
      this.finish(entry, answer, '');
    });
    stream.on('error', (err: Error) => this.finish(entry, null, `${this.label}: ${describeError(err)}`));
    stream.on('close', () => {
      this.finish(entry, null, `${this.label}: stream closed without an answer`);
    });
    stream.end(entry.msg);
  }

  private finish(entry: Pending, answer: Buffer | null, failure: string): void {
    if (entry.finished) return;
    entry.finished = true;
    if (entry.stream !== null) {
      this.active.delete(entry);
      // A stream given up on (deadline, bad answer) is cancelled; an answered one ends by itself.
      if (answer === null && !entry.stream.closed) entry.stream.close(constants.NGHTTP2_CANCEL);
      entry.stream = null;
    }
    entry.done(answer, failure);
    // A stream slot is free.
    if (this.waiting.length > 0) this.pump();
  }

  private connectTo(ip: string): void {
    const { port, serverName } = this.upstream;
    // Our own TLS socket: to connect to the (bootstrapped) address while verifying the name.
    const session = http2Connect(this.authority, {
      createConnection: () => {
        const socket = tlsConnect({ host: ip, port, servername: serverName, ca: this.ca, ALPNProtocols: ['h2'], session: this.tlsSession });
        // Small frames in both directions: Nagle's algorithm would hold each behind an ACK.
        socket.setNoDelay(true);
        return socket;
      },
    });
    this.session = session;
    this.connected = false;
    const timer = this.connector.handshakeTimer('TLS and HTTP/2', (failure) => {
      if (this.session === session && !this.connected) this.lost(session, failure, false);
    });
    session.socket?.on('session', (ticket: Buffer) => {
      this.tlsSession = ticket;
    });
    session.once('connect', () => {
      clearTimeout(timer);
      if (this.session !== session) return;
      const alpn = (session.socket as import('node:tls').TLSSocket).alpnProtocol;
      if (alpn !== 'h2') {
        this.lost(session, `${this.label}: the server does not offer HTTP/2 (ALPN ${alpn === false ? 'none' : String(alpn)})`, false);
        return;
      }
      this.connected = true;
      this.handshakes++;
      this.connector.succeeded();
      session.setTimeout(this.connector.idleMs, () => {
        if (this.active.size === 0 && this.waiting.length === 0 && this.session === session) this.lost(session, '', true);
      });
      this.pump();
    });
    session.on('remoteSettings', () => {
      if (this.session === session && this.connected) this.pump();
    });
    session.on('goaway', () => {
      // Streams already open finish on the old session; new ones go to a new session.
      if (this.session === session) this.retire(session);
    });
    session.on('error', (err: Error) => {
      clearTimeout(timer);
      if (this.session === session) this.lost(session, `${this.label}: ${describeError(err)}`, this.connected);
    });
    session.on('close', () => {
      clearTimeout(timer);
      if (this.session === session) this.lost(session, `${this.label}: closed the connection${this.connected ? '' : ' during the handshake'}`, this.connected);
    });
  }

  /** The session takes no new streams: the next query opens a new one. */
  private retire(session: ClientHttp2Session): void {
    this.session = null;
    this.connected = false;
    this.connector.ended();
    session.close();
    if (this.waiting.length > 0) this.pump();
  }

  /**
   * The session is gone. After a good handshake its queries that were waiting go to a new
   * session (streams already sent are failed by their own events); a failed handshake
   * fails every query and starts the backoff.
   */
  private lost(session: ClientHttp2Session, failure: string, wasConnected: boolean): void {
    this.session = null;
    this.connected = false;
    this.connector.ended();
    session.destroy();
    if (wasConnected) {
      if (this.waiting.length > 0) this.pump();
      return;
    }
    this.fail(failure);
  }

  private fail(failure: string): void {
    this.connector.failed(failure, true);
    const all = [...this.waiting, ...this.active];
    this.waiting = [];
    for (const entry of all) this.finish(entry, null, failure);
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of this.active) if (entry.deadline <= now) this.finish(entry, null, `${this.label} did not answer in time`);
    if (this.waiting.some((e) => e.deadline <= now)) {
      const late = this.waiting.filter((e) => e.deadline <= now);
      this.waiting = this.waiting.filter((e) => e.deadline > now);
      for (const entry of late) this.finish(entry, null, `${this.label} did not answer in time`);
    }
    if (this.active.size === 0 && this.waiting.length === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  close(): void {
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const session = this.session;
    this.session = null;
    const all = [...this.waiting, ...this.active];
    this.waiting = [];
    for (const entry of all) this.finish(entry, null, `${this.label}: closed`);
    session?.destroy();
  }
}
