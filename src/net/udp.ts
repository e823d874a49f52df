// A UDP listener: every datagram goes to the resolver; answers go back from the same socket.
import cluster from 'node:cluster';
import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import type { Transport } from './transport.js';
import { literalLookup, type Endpoint } from './endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';

/**
 * Node >= 22.12 (and 23.1+) can set SO_REUSEPORT on a UDP socket: then each cluster worker
 * owns a socket on the same address and the kernel spreads datagrams over them. Older Node
 * shares the primary's one socket with every worker instead (see workers.ts).
 */
export const UDP_REUSE_PORT = ((): boolean => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
})();

export type QueryHandler = (msg: Buffer, address: string, port: number, transport: Transport) => void;

export class UdpListener implements Transport {
  readonly udp = true;
  /** Set on shutdown: new queries are ignored while the ones in flight are answered. */
  draining = false;

  constructor(private readonly socket: Socket, readonly endpoint: Endpoint) {}

  send(answer: Buffer, address: string, port: number): void {
    this.socket.send(answer, port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export function listenUdp(endpoint: Endpoint, handle: QueryHandler, onError: (err: Error) => void): Promise<UdpListener> {
  return new Promise((resolve, reject) => {
    // ipv6Only: so that [::]:53 and 0.0.0.0:53 can both be listened on. In a cluster worker,
    // either a socket of its own with SO_REUSEPORT (newer Node) or, not exclusive, the one
    // socket the primary shares with every worker (see workers.ts).
    const reusePort = cluster.isWorker && UDP_REUSE_PORT;
    const socket = createSocket({ type: endpoint.family === 4 ? 'udp4' : 'udp6', ipv6Only: endpoint.family === 6, lookup: literalLookup,
      ...(reusePort ? { reusePort: true } : {}) } as SocketOptions);
    const listener = new UdpListener(socket, endpoint);
    const onBindError = (err: NodeJS.ErrnoException): void => reject(new StartupError(bindErrorMessage(err, endpoint, 'UDP')));
    socket.once('error', onBindError);
    socket.on('message', (msg, rinfo) => {
      if (!listener.draining) handle(msg, rinfo.address, rinfo.port, listener);
    });
    socket.bind({ address: endpoint.host, port: endpoint.port, exclusive: !cluster.isWorker || reusePort }, () => {
      socket.off('error', onBindError);
      // Errors after binding (e.g. a send to a vanished client) must never end the server.
      socket.on('error', onError);
      try {
        socket.setRecvBufferSize(4 * 1024 * 1024);
        socket.setSendBufferSize(4 * 1024 * 1024);
      } catch {
        // The kernel caps these at net.core.[rw]mem_max; the default is still workable.
      }
      resolve(listener);
    });
  });
}
