// IPv4/IPv6 networks: parsing `64.12.25.0/22`, `fd00::/8`, and testing addresses against them.
import { isIP } from 'node:net';
import { addressBytes } from '../../wire/answer.js';

export interface Cidr {
  family: 4 | 6;
  /** Network bytes (4 or 16), host bits cleared. */
  bytes: Buffer;
  prefix: number;
  /** As written, for messages. */
  text: string;
}

/** `a.b.c.d/n`, `x::/n`, or a bare address (a /32 or /128). Error text on failure. */
export function parseCidr(text: string): Cidr | { error: string } {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return { error: `"${address}" is not an IPv4 or IPv6 address` };
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return { error: `prefix length "/${p}" must be 0 to ${max}` };
    prefix = Number(p);
  }
  const bytes = addressBytes(address);
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family: family as 4 | 6, bytes, prefix, text };
}

/** True when `bytes[offset..offset+length)` (4 or 16 bytes) falls inside `net`. */
export function cidrContains(net: Cidr, bytes: Buffer, offset: number, length: number): boolean {
  if (length !== net.bytes.length) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (bytes[offset + i] !== net.bytes[i]) return false;
  const rest = net.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (bytes[offset + full]! & mask) === net.bytes[full];
}

/**
 * Address text (as node reports a client: `127.0.0.1`, `::1`, `::ffff:10.0.0.1`) -> bytes,
 * with IPv4-mapped IPv6 addresses turned into plain IPv4 so that IPv4 networks match them.
 */
export function clientBytes(address: string): Buffer {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return addressBytes(mapped ? mapped[1]! : address.replace(/%.*$/, ''));
}

/** A list of networks with a per-address memo: clients repeat, parsing their text does not. */
export class NetworkList {
  private readonly memo = new Map<string, boolean>();

  constructor(readonly networks: readonly Cidr[]) {}

  contains(address: string): boolean {
    let verdict = this.memo.get(address);
    if (verdict === undefined) {
      const bytes = clientBytes(address);
      verdict = this.networks.some((n) => cidrContains(n, bytes, 0, bytes.length));
      if (this.memo.size >= 65536) this.memo.clear();
      this.memo.set(address, verdict);
    }
    return verdict;
  }
}
