// A UDP listener: every datagram goes to the resolver; answers go back from the same socket.
import cluster from 'node:cluster';
import { createSocket, type Socket } from 'node:dgram';
import type { Transport } from '../transport.js';
import type { Endpoint } from '../upstream/endpoint.js';
import { bindErrorMessage, StartupError } from './bind-error.js';

/**
 * Answers go back to the address a query came from: always an IP literal. dgram would
 * otherwise pass it through dns.lookup (two regexes and a nextTick per answer).
 */
function literalLookup(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

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
    // ipv6Only: so that [::]:53 and 0.0.0.0:53 can both be listened on. Not exclusive in a
    // cluster worker: the primary then shares one socket with every worker (see workers.ts).
    const socket = createSocket({ type: endpoint.family === 4 ? 'udp4' : 'udp6', ipv6Only: endpoint.family === 6, lookup: literalLookup });
    const listener = new UdpListener(socket, endpoint);
    const onBindError = (err: NodeJS.ErrnoException): void => reject(new StartupError(bindErrorMessage(err, endpoint, 'UDP')));
    socket.once('error', onBindError);
    socket.on('message', (msg, rinfo) => {
      if (!listener.draining) handle(msg, rinfo.address, rinfo.port, listener);
    });
    socket.bind({ address: endpoint.host, port: endpoint.port, exclusive: !cluster.isWorker }, () => {
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
