// What the DoT and DoH upstream transports share: the interface the forwarder calls, the
// options, and opening a connection (Connector: the address, through --bootstrap for a name;
// the handshake deadline; the reconnect backoff).
import { isIP } from 'node:net';
import type { EncryptedUpstream } from '../upstream-url.js';
import { unreachableWhy } from './unreachable.js';

export interface UpstreamQuestion {
  qnameKey: string;
  qtype: number;
  qclass: number;
}

/**
 * `answer` is a response to the question (never checked for rcode here), or null with
 * `failure` saying why, naming the upstream: "tls://192.0.2.1:853#dns.example: certificate has expired".
 */
export type ExchangeDone = (answer: Buffer | null, failure: string) => void;

export interface EncryptedTransport {
  readonly label: string;
  /**
   * Sends `msg` (the transport may overwrite its ID; the caller keeps the client's bytes) and
   * calls `done` exactly once: with the answer, or with null at `deadline` (a Date.now() value),
   * when the connection fails, or at once while the upstream is backing off after a failure.
   */
  exchange(msg: Buffer, q: UpstreamQuestion, deadline: number, done: ExchangeDone): void;
  close(): void;
}

export interface EncryptedOptions {
  /** Extra trusted CAs (--upstream-ca), added to the system's. */
  ca?: Buffer[];
  /** Looks a host name up (through --bootstrap); only called for upstreams given by name. */
  resolveHost?: (name: string) => Promise<string[]>;
  /** Close a connection with nothing in flight after this long. */
  idleMs?: number;
  /** Give up on a TCP + TLS handshake after this long. */
  connectTimeoutMs?: number;
  /** Told about connection failures (for the log); the same text reaches `done`. */
  onFailure?: (failure: string) => void;
}

export const DEFAULT_IDLE_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;

/** Waits after a failed connection: 250 ms, doubling to 10 s; reset by a good handshake. */
export class Backoff {
  private failures = 0;
  private until = 0;
  /** The last failure, given to queries that arrive while waiting. */
  reason = '';

  failed(reason: string): void {
    this.reason = reason;
    this.until = Date.now() + Math.min(10_000, 250 * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 16);
  }

  succeeded(): void {
    this.failures = 0;
    this.until = 0;
    this.reason = '';
  }

  get waiting(): boolean {
    return this.until > Date.now();
  }
}

/**
 * The address to connect to: the host itself when it is an IP address, else a lookup
 * (through --bootstrap) made once and repeated only after a failure (`forget`).
 */
export class HostAddress {
  private addresses: string[] | null = null;
  private next = 0;

  constructor(private readonly upstream: EncryptedUpstream, private readonly resolveHost?: (name: string) => Promise<string[]>) {}

  get(): string | Promise<string> {
    if (isIP(this.upstream.host) !== 0) return this.upstream.host;
    if (this.addresses !== null && this.addresses.length > 0) return this.addresses[this.next % this.addresses.length]!;
    if (this.resolveHost === undefined) return Promise.reject(new Error(`${this.upstream.host} is a name and no --bootstrap resolver was given to look it up`));
    return this.resolveHost(this.upstream.host).then((addresses) => {
      if (addresses.length === 0) throw new Error(`--bootstrap found no address for ${this.upstream.host}`);
      this.addresses = addresses;
      this.next = 0;
      return addresses[0]!;
    });
  }

  /** After a failed connection: the next address, and a fresh lookup once all were tried. */
  forget(): void {
    if (this.addresses === null) return;
    this.next++;
    if (this.next >= this.addresses.length) this.addresses = null;
  }
}

/** One line for a TLS or socket error: Node's message without its "Client network socket" noise. */
export function describeError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  // Over TCP a refusal is the server's reset, not an ICMP error.
  if (code === 'ECONNREFUSED') return 'unreachable (ECONNREFUSED: connection refused, nothing listens on that port)';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  const unreachable = unreachableWhy(code);
  if (unreachable !== null) return `unreachable (${unreachable})`;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return 'does not speak TLS on this port (wrong version number)';
  if (/disconnected before secure TLS connection/.test(err.message)) return 'closed the connection during the TLS handshake';
  return err.message.replace(/\s+/g, ' ');
}

/**
 * Opening the one connection of a DoT or DoH upstream, as both transports do it: the address
 * (the host itself, or a --bootstrap lookup for a name), a deadline for the handshake, and
 * after a failure a backoff during which queries fail at once with the reason (the forwarder
 * then asks the next upstream), the address lookup redone, and the failure told for the log.
 */
export class Connector {
  private readonly backoff = new Backoff();
  private readonly address: HostAddress;
  /** Between open() and the end of the handshake (including a --bootstrap lookup). */
  connecting = false;

  constructor(private readonly upstream: EncryptedUpstream, private readonly options: EncryptedOptions) {
    this.address = new HostAddress(upstream, options.resolveHost);
  }

  get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  get idleMs(): number {
    return this.options.idleMs ?? DEFAULT_IDLE_MS;
  }

  /** Why a query arriving now fails at once (not connected, backing off after a failure), or null. */
  refusal(connected: boolean): string | null {
    return !connected && !this.connecting && this.backoff.waiting ? this.backoff.reason : null;
  }

  /** Finds the address (maybe through --bootstrap), then `connectTo(ip)`; a failed lookup is `onLookupFailure(failure)`. */
  open(isClosed: () => boolean, connectTo: (ip: string) => void, onLookupFailure: (failure: string) => void): void {
    this.connecting = true;
    const address = this.address.get();
    if (typeof address === 'string') {
      connectTo(address);
      return;
    }
    // A name still to be looked up: the transport's queries wait meanwhile.
    address.then((ip) => {
      if (!isClosed()) connectTo(ip);
    }, (err: Error) => {
      this.connecting = false;
      if (!isClosed()) onLookupFailure(`${this.upstream.label}: ${err.message}`);
    });
  }

  /** Calls `onTimeout(failure)` unless the handshake ends first (clear the timer then). */
  handshakeTimer(what: string, onTimeout: (failure: string) => void): NodeJS.Timeout {
    const ms = this.connectTimeoutMs;
    const timer = setTimeout(() => onTimeout(`${this.upstream.label}: no ${what} handshake within ${ms} ms`), ms);
    timer.unref();
    return timer;
  }

  /** A good handshake: the backoff starts over. */
  succeeded(): void {
    this.connecting = false;
    this.backoff.succeeded();
  }

  /** The connection is gone (`connecting` ends). */
  ended(): void {
    this.connecting = false;
  }

  /** A failed connection: back off, look the name up again next time (`forgetAddress`), tell the log. */
  failed(failure: string, forgetAddress: boolean): void {
    if (forgetAddress) this.address.forget();
    this.backoff.failed(failure);
    this.options.onFailure?.(failure);
  }
}
