// `HOST[:PORT]` and `[v6]:PORT` addresses, for --listen and --upstream.
import { isIP } from 'node:net';

export interface Endpoint {
  host: string;
  port: number;
  family: 4 | 6;
  /** `127.0.0.1:53` or `[::1]:53`: how it is shown in logs and messages. */
  label: string;
}

export function endpointLabel(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses an address with an optional port. Hosts must be IP addresses: a DNS server that
 * needs DNS to find its upstream cannot start when DNS is down.
 */
export function parseEndpoint(text: string, defaultPort: number | undefined): Endpoint | { error: string } {
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const colon = text.lastIndexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
  }
  const family = isIP(host);
  if (family === 0) return { error: `"${host}" is not an IP address (write e.g. 192.0.2.1:53 or [2001:db8::1]:53)` };
  if (portText === undefined && defaultPort === undefined) {
    // "::1:5353" is itself an IPv6 address: the port must follow the address in brackets.
    return { error: family === 6 ? `"${text}" needs a port: write an IPv6 address in brackets, then the port (e.g. [::1]:5353)` : `"${text}" needs a port (e.g. ${text}:5353)` };
  }
  const port = portText === undefined ? defaultPort! : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || (portText !== undefined && !/^\d+$/.test(portText))) {
    return { error: `port "${portText}" must be a number from 0 to 65535` };
  }
  return { host, port, family: family as 4 | 6, label: endpointLabel(host, port) };
}

/**
 * dgram's `lookup` for sockets that only ever send to IP literals (answers go back to the
 * address a query came from; upstreams are IP addresses): dgram would otherwise pass each
 * one through dns.lookup, two regexes and a nextTick per datagram.
 */
export function literalLookup(address: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}
