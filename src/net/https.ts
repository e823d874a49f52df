// A DNS over HTTPS listener (RFC 8484) at /dns-query: GET with ?dns=BASE64URL and POST of
// application/dns-message, over HTTP/2 and HTTP/1.1 (browsers, curl, kdig). Every query goes
// to the same handler as UDP and TCP, with the client's address, so allow-net, groups,
// policy and statistics apply unchanged; the answer is the response body.
import cluster from 'node:cluster';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Endpoint } from './endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';
import { loadCertificate, type CertificateFiles } from './certificate.js';
import type { TcpOptions } from './tcp.js';
import type { Transport } from './transport.js';
import type { QueryHandler } from './udp.js';

/** The largest DNS message (its length is a 16-bit number). */
const MAX_MESSAGE = 65535;

export const DOH_PATH = '/dns-query';
const HANDSHAKE_TIMEOUT_MS = 5000;
/** A query the handler never answers (dropped as garbage) is closed after this long. */
const ANSWER_TIMEOUT_MS = 6000;
const CONTENT_TYPE = 'application/dns-message';
/** Streams one HTTP/2 client may have open at once (Node's default is unlimited). */
const MAX_STREAMS_PER_CONNECTION = 256;

/** One HTTP exchange as the resolver sees it: a stream transport whose one answer is the body. */
class DohExchange implements Transport {
  readonly udp = false;
  private answered = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly res: Http2ServerResponse) {
    this.timer = setTimeout(() => this.error(502, 'no answer'), ANSWER_TIMEOUT_MS);
    this.timer.unref();
  }

  send(answer: Buffer): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.timer);
    if (this.res.writableEnded || this.res.destroyed) return;
    this.res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': answer.length });
    this.res.end(answer);
  }

  error(status: number, text: string): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.timer);
    if (this.res.writableEnded || this.res.destroyed) return;
    this.res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    this.res.end(`${text}\n`);
  }
}

export class HttpsListener {
  draining = false;
  readonly connections = new Set<TLSSocket>();

  constructor(readonly server: Http2SecureServer, readonly endpoint: Endpoint, private readonly files: CertificateFiles) {}

  /** Re-reads --tls-cert and --tls-key (SIGHUP); throws (keeping the old pair) when they are unusable. */
  reloadCertificate(): void {
    this.server.setSecureContext(loadCertificate(this.files));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.connections) socket.destroy();
    });
  }
}

function reject(res: Http2ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...extra });
  res.end(`${text}\n`);
}

function onRequest(listener: HttpsListener, handle: QueryHandler, req: Http2ServerRequest, res: Http2ServerResponse): void {
  const url = req.url ?? '';
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  if (path !== DOH_PATH) {
    reject(res, 404, `not found: DNS over HTTPS is at ${DOH_PATH}`);
    return;
  }
  if (listener.draining) {
    reject(res, 503, 'shutting down');
    return;
  }
  const address = req.socket.remoteAddress ?? '';
  const port = req.socket.remotePort ?? 0;
  const ask = (msg: Buffer): void => {
    if (msg.length < 12 || msg.length > MAX_MESSAGE) {
      reject(res, 400, 'not a DNS message');
      return;
    }
    handle(msg, address, port, new DohExchange(res));
  };
  if (req.method === 'GET' || req.method === 'HEAD') {
    const dns = new URLSearchParams(query < 0 ? '' : url.slice(query + 1)).get('dns');
    if (dns === null || !/^[A-Za-z0-9_-]+={0,2}$/.test(dns)) {
      reject(res, 400, 'GET needs ?dns= with a base64url DNS message');
      return;
    }
    ask(Buffer.from(dns, 'base64url'));
    return;
  }
  if (req.method === 'POST') {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== CONTENT_TYPE) {
      reject(res, 415, `POST needs content-type ${CONTENT_TYPE}`);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_MESSAGE) {
        reject(res, 413, 'a DNS message is at most 65535 bytes');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= MAX_MESSAGE) ask(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    return;
  }
  reject(res, 405, 'use GET or POST', { allow: 'GET, POST' });
}

export async function listenHttps(endpoint: Endpoint, handle: QueryHandler, options: TcpOptions & CertificateFiles): Promise<HttpsListener> {
  const certificate = loadCertificate(options);
  return new Promise((resolve, rejectListen) => {
    const server = createSecureServer({
      ...certificate, allowHTTP1: true, handshakeTimeout: Math.min(HANDSHAKE_TIMEOUT_MS, options.idleTimeoutMs),
      settings: { maxConcurrentStreams: MAX_STREAMS_PER_CONNECTION },
    });
    const listener = new HttpsListener(server, endpoint, options);
    server.maxConnections = options.maxConnections;
    // Registered after the server's own listener, so this idle timeout is the one that holds.
    server.on('secureConnection', (socket: TLSSocket) => {
      listener.connections.add(socket);
      socket.setNoDelay(true);
      socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
      socket.on('close', () => listener.connections.delete(socket));
    });
    server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => onRequest(listener, handle, req, res));
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    server.on('sessionError', () => undefined);
    const onBindError = (err: NodeJS.ErrnoException): void => rejectListen(new StartupError(bindErrorMessage(err, endpoint, 'DoH', '--listen-https')));
    server.once('error', onBindError);
    server.listen({ host: endpoint.host, port: endpoint.port, ipv6Only: endpoint.family === 6, exclusive: !cluster.isWorker }, () => {
      server.off('error', onBindError);
      server.on('error', () => undefined);
      resolve(listener);
    });
  });
}
