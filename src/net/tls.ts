// A DNS over TLS listener (RFC 7858): TCP's framing and connection handling (tcp.ts) inside
// TLS. Queries go to the same handler as UDP and TCP, with the client's address, so
// allow-net, groups, policy and statistics apply unchanged; answers leave as over TCP.
import cluster from 'node:cluster';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Endpoint } from './endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';
import { loadCertificate, type CertificateFiles } from './certificate.js';
import { TcpListener, type TcpOptions } from './tcp.js';
import type { QueryHandler } from './udp.js';

/** A client that has not finished its handshake within this long is dropped. */
const HANDSHAKE_TIMEOUT_MS = 5000;

/** A DoT listener: a TCP listener's connection handling (caps, deadlines, pipelining) over TLS. */
export class TlsListener {
  constructor(readonly server: Server, readonly endpoint: Endpoint, private readonly files: CertificateFiles, readonly stream: TcpListener) {}

  get draining(): boolean {
    return this.stream.draining;
  }

  set draining(value: boolean) {
    this.stream.draining = value;
  }

  /** Re-reads --tls-cert and --tls-key (SIGHUP); throws (keeping the old pair) when they are unusable. */
  reloadCertificate(): void {
    this.server.setSecureContext(loadCertificate(this.files));
  }

  close(): Promise<void> {
    return this.stream.close();
  }
}

export async function listenTls(endpoint: Endpoint, handle: QueryHandler, options: TcpOptions & CertificateFiles): Promise<TlsListener> {
  const certificate = loadCertificate(options);
  return new Promise((resolve, reject) => {
    // Not allowHalfOpen (as TCP is): with it, a TLS server's close() never completes once a
    // client has gone. A DoT client that half-closes loses answers still being forwarded.
    const server = createServer({ ...certificate, ALPNProtocols: ['dot'],
      handshakeTimeout: Math.min(HANDSHAKE_TIMEOUT_MS, options.idleTimeoutMs) });
    const listener = new TlsListener(server, endpoint, options, new TcpListener(server, endpoint, options));
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.setNoDelay(true);
      listener.stream.accept(socket, handle);
    });
    // A failed handshake (wrong certificate on the client's side, a port scan) is the client's business.
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    const onBindError = (err: NodeJS.ErrnoException): void => reject(new StartupError(bindErrorMessage(err, endpoint, 'DoT', '--listen-tls')));
    server.once('error', onBindError);
    server.listen({ host: endpoint.host, port: endpoint.port, ipv6Only: endpoint.family === 6, exclusive: !cluster.isWorker }, () => {
      server.off('error', onBindError);
      server.on('error', () => undefined);
      resolve(listener);
    });
  });
}
