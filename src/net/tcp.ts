// A TCP listener (RFC 7766): several queries per connection, each answered as soon as it is
// ready (possibly out of order); idle connections closed; a cap on open connections.
import cluster from 'node:cluster';
import { createServer, type Server, type Socket } from 'node:net';
import type { Transport } from './transport.js';
import type { Endpoint } from './endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';
import type { QueryHandler } from './udp.js';

export interface TcpOptions {
  idleTimeoutMs: number;
  maxConnections: number;
}

/** One stream connection's framing (RFC 7766); also used for DoT connections (tls.ts). */
export class TcpConnection implements Transport {
  readonly udp = false;
  private buffered: Buffer | null = null;

  constructor(private readonly socket: Socket, private readonly handle: QueryHandler, private readonly listener: { readonly draining: boolean }) {}

  send(answer: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const length = Buffer.allocUnsafe(2);
    length.writeUInt16BE(answer.length, 0);
    this.socket.cork();
    this.socket.write(length);
    this.socket.write(answer);
    process.nextTick(() => this.socket.uncork());
  }

  receive(chunk: Buffer): void {
    let data = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
    while (data.length >= 2) {
      const length = data.readUInt16BE(0);
      if (data.length < 2 + length) break;
      // Copy: the resolver may keep the message (and rewrite its ID) while it waits upstream.
      const msg = Buffer.from(data.subarray(2, 2 + length));
      data = data.subarray(2 + length);
      if (this.listener.draining) continue;
      this.handle(msg, this.socket.remoteAddress ?? '', this.socket.remotePort ?? 0, this);
    }
    this.buffered = data.length > 0 ? data : null;
  }
}

export class TcpListener {
  draining = false;
  readonly connections = new Set<Socket>();

  constructor(readonly server: Server, readonly endpoint: Endpoint) {}

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.connections) socket.destroy();
    });
  }
}

export function listenTcp(endpoint: Endpoint, handle: QueryHandler, options: TcpOptions): Promise<TcpListener> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true });
    const listener = new TcpListener(server, endpoint);
    server.maxConnections = options.maxConnections;
    server.on('connection', (socket) => {
      listener.connections.add(socket);
      const connection = new TcpConnection(socket, handle, listener);
      socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
      socket.on('data', (chunk: Buffer) => connection.receive(chunk));
      socket.on('error', () => socket.destroy());
      socket.on('close', () => listener.connections.delete(socket));
    });
    const onBindError = (err: NodeJS.ErrnoException): void => reject(new StartupError(bindErrorMessage(err, endpoint, 'TCP')));
    server.once('error', onBindError);
    server.listen({ host: endpoint.host, port: endpoint.port, ipv6Only: endpoint.family === 6, exclusive: !cluster.isWorker }, () => {
      server.off('error', onBindError);
      server.on('error', () => undefined);
      resolve(listener);
    });
  });
}
