// Looking up an encrypted upstream's host name (https://dns.example/dns-query) through the
// --bootstrap servers, over plain UDP on the forwarder's own sockets, never through the
// system resolver: on a machine whose resolv.conf points at this server, that would ask
// ourselves, and we cannot answer before the upstream is known.
import type { Endpoint } from '../../net/endpoint.js';
import { CLASS_IN, FLAG_RD, QTYPE, RCODE } from '../../wire/constants.js';
import { textToKey } from '../../wire/names.js';
import { inspectResponse } from '../../wire/response.js';
import { UdpUpstreamClient } from './transports/udp.js';

const LOOKUP_TIMEOUT_MS = 2000;

function buildQuestion(qnameKey: string, qtype: number): { msg: Buffer; questionEnd: number } {
  const msg = Buffer.alloc(12 + qnameKey.length + 1 + 4);
  msg.writeUInt16BE(FLAG_RD, 2);
  msg.writeUInt16BE(1, 4);
  msg.write(qnameKey, 12, 'latin1');
  const end = 12 + qnameKey.length + 1;
  msg.writeUInt16BE(qtype, end);
  msg.writeUInt16BE(CLASS_IN, end + 2);
  return { msg, questionEnd: end + 4 };
}

function addressText(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function ask(udp: UdpUpstreamClient, servers: Endpoint[], qnameKey: string, qtype: number): Promise<{ addresses: string[]; failure: string }> {
  return new Promise((resolve) => {
    let index = 0;
    let failure = '';
    const next = (): void => {
      if (index >= servers.length) {
        resolve({ addresses: [], failure });
        return;
      }
      const server = servers[index++]!;
      const { msg, questionEnd } = buildQuestion(qnameKey, qtype);
      udp.send(server, msg, qnameKey, qtype, CLASS_IN, Date.now() + LOOKUP_TIMEOUT_MS, (response) => {
        const info = response === null ? null : inspectResponse(response, questionEnd);
        if (response === null || info === null) {
          failure = `bootstrap ${server.label} did not answer`;
          next();
          return;
        }
        if (info.rcode !== RCODE.NOERROR) {
          failure = `bootstrap ${server.label} answered rcode ${info.rcode}`;
          next();
          return;
        }
        const addresses: string[] = [];
        for (let i = 0; i < info.addresses.length; i += 3) {
          const type = info.addresses[i]!;
          const at = info.addresses[i + 1]!;
          const length = info.addresses[i + 2]!;
          if ((type === QTYPE.A && length === 4) || (type === QTYPE.AAAA && length === 16)) addresses.push(addressText(response!.subarray(at, at + length)));
        }
        resolve({ addresses, failure: addresses.length === 0 ? `bootstrap ${server.label} knows no address for it` : '' });
      });
    };
    next();
  });
}

/**
 * A lookup function for encrypted upstreams given by name: A records first, AAAA when there
 * are none. Rejects with one line naming the name and the bootstrap servers.
 */
export function bootstrapResolver(servers: Endpoint[], udp: UdpUpstreamClient): (name: string) => Promise<string[]> {
  return async (name: string): Promise<string[]> => {
    if (servers.length === 0) throw new Error(`${name} is a name: give --bootstrap IP (a plain DNS server) to look it up`);
    const qnameKey = textToKey(name);
    if (typeof qnameKey !== 'string') throw new Error(`"${name}" is not a host name: ${qnameKey.error}`);
    const v4 = await ask(udp, servers, qnameKey, QTYPE.A);
    if (v4.addresses.length > 0) return v4.addresses;
    const v6 = await ask(udp, servers, qnameKey, QTYPE.AAAA);
    if (v6.addresses.length > 0) return v6.addresses;
    throw new Error(`cannot look up ${name}: ${v4.failure}`);
  };
}
