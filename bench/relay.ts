// `node dist-bench/bench/relay.js PORT UPSTREAM_PORT`: a bare DNS relay on node:dgram, the
// floor under any forwarder written for Node (issue 18 asks W4 to reach 0.9 of it). It does
// only what relaying needs: a new ID per query (one upstream socket, IDs in turn), the client
// remembered under that ID, the answer's own ID put back. No cache, no checks of the answer,
// no source port per query: everything sinkhole does on top of this is what the ratio costs.
import { createSocket, type RemoteInfo } from 'node:dgram';
import { pathToFileURL } from 'node:url';

interface Waiting { address: string; port: number; id: number }

export interface Relay { close(): Promise<void> }

/** Starts the relay on 127.0.0.1:`port` toward 127.0.0.1:`upstreamPort`; resolves once it listens. */
export async function startRelay(port: number, upstreamPort: number): Promise<Relay> {
  const clients = createSocket('udp4');
  const upstream = createSocket('udp4');
  const waiting: (Waiting | undefined)[] = new Array(65536);
  let nextId = 0;

  clients.on('message', (msg: Buffer, from: RemoteInfo) => {
    if (msg.length < 12) return;
    const id = nextId;
    nextId = (nextId + 1) & 0xffff;
    waiting[id] = { address: from.address, port: from.port, id: msg.readUInt16BE(0) };
    msg.writeUInt16BE(id, 0);
    upstream.send(msg);
  });

  upstream.on('message', (msg: Buffer) => {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const to = waiting[id];
    if (to === undefined) return;
    waiting[id] = undefined;
    msg.writeUInt16BE(to.id, 0);
    clients.send(msg, to.port, to.address);
  });

  await new Promise<void>((resolve) => upstream.connect(upstreamPort, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => clients.bind(port, '127.0.0.1', resolve));
  // The same buffers as sinkhole's listener (src/net/udp.ts).
  for (const s of [clients, upstream]) {
    s.setRecvBufferSize(4 * 1024 * 1024);
    s.setSendBufferSize(4 * 1024 * 1024);
  }
  return { close: async () => void (await Promise.all([clients, upstream].map((s) => new Promise<void>((r) => s.close(() => r()))))) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [port, upstreamPort] = process.argv.slice(2).map(Number);
  if (!Number.isInteger(port) || !Number.isInteger(upstreamPort)) {
    console.error('usage: node dist-bench/bench/relay.js PORT UPSTREAM_PORT');
    process.exit(2);
  }
  await startRelay(port!, upstreamPort!);
}
