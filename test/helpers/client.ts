// Sending real queries to the server under test, over UDP or TCP on 127.0.0.1.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { buildQuery, decode, type Decoded, type QueryOptions } from './dns.js';

export async function udpExchange(port: number, msg: Buffer, timeoutMs = 3000, host = '127.0.0.1', bindAddress?: string): Promise<Buffer | null> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  if (bindAddress !== undefined) await new Promise<void>((r) => socket.bind(0, bindAddress, r));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, timeoutMs);
    socket.on('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(msg, port, host);
  });
}

/** Sends several messages on one TCP connection at once; resolves with `expected` replies in arrival order. */
export async function tcpExchange(port: number, msgs: Buffer[], timeoutMs = 3000, host = '127.0.0.1', expected = msgs.length): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    const socket = connect(port, host, () => {
      socket.write(Buffer.concat(msgs.map((m) => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(m.length, 0);
        return Buffer.concat([len, m]);
      })));
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP: ${replies.length} of ${expected} replies within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        replies.push(Buffer.from(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (replies.length === expected) {
        clearTimeout(timer);
        socket.end();
        resolve(replies);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export async function ask(port: number, name: string, type: number, o: QueryOptions & { tcp?: boolean; from?: string; host?: string } = {}): Promise<Decoded> {
  const msg = buildQuery(name, type, o);
  if (o.tcp) {
    const [reply] = await tcpExchange(port, [msg]);
    return decode(reply!);
  }
  const reply = await udpExchange(port, msg, 6000, o.host ?? '127.0.0.1', o.from);
  if (reply === null) throw new Error(`no answer for ${name}/${type}`);
  return decode(reply);
}
