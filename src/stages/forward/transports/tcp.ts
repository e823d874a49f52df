// One query over TCP (RFC 7766 framing: a 2-byte length before each message). Used when an
// upstream's UDP answer comes back truncated; rare enough that a connection per query is fine.
import { connect } from 'node:net';
import { answersQuestion } from '../../../wire/response.js';
import type { Endpoint } from '../../../net/endpoint.js';

export function tcpQuery(upstream: Endpoint, msg: Buffer, qnameKey: string, qtype: number, qclass: number,
  timeoutMs: number, done: (response: Buffer | null) => void): void {
  let finished = false;
  let received: Buffer = Buffer.alloc(0);
  const socket = connect({ host: upstream.host, port: upstream.port });
  const finish = (response: Buffer | null): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.destroy();
    done(response);
  };
  const timer = setTimeout(() => finish(null), Math.max(1, timeoutMs));
  const id = msg.readUInt16BE(0);
  socket.on('connect', () => {
    const frame = Buffer.allocUnsafe(2 + msg.length);
    frame.writeUInt16BE(msg.length, 0);
    msg.copy(frame, 2);
    socket.write(frame);
  });
  socket.on('data', (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    while (received.length >= 2) {
      const length = received.readUInt16BE(0);
      if (received.length < 2 + length) return;
      const response = received.subarray(2, 2 + length);
      received = received.subarray(2 + length);
      if (response.length >= 12 && response.readUInt16BE(0) === id && answersQuestion(response, qnameKey, qtype, qclass)) {
        finish(response);
        return;
      }
    }
  });
  socket.on('error', () => finish(null));
  socket.on('close', () => finish(null));
}
