// Test-side DNS encoding and decoding, written independently of src/wire so that tests do
// not check the server's byte handling with the server's own code.
import { isIPv4 } from 'node:net';

export const T = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, OPT: 41, RRSIG: 46, SVCB: 64, HTTPS: 65, ANY: 255 } as const;

export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const parts = trimmed.split('.').map((l) => {
    const b = Buffer.from(l, 'latin1');
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

export function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

export function ipv6(address: string): Buffer {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface Rr {
  name: string;
  type: number;
  ttl: number;
  /** rdata bytes, or for A/AAAA an address, for CNAME/NS a name. */
  data: Buffer | string;
  class?: number;
}

export function rdata(rr: Rr): Buffer {
  if (Buffer.isBuffer(rr.data)) return rr.data;
  if (rr.type === T.A) return ipv4(rr.data);
  if (rr.type === T.AAAA) return ipv6(rr.data);
  if (rr.type === T.CNAME || rr.type === T.NS || rr.type === T.PTR) return encodeName(rr.data);
  if (rr.type === T.TXT) {
    const b = Buffer.from(rr.data);
    return Buffer.concat([Buffer.from([b.length]), b]);
  }
  throw new Error(`no text form for type ${rr.type}`);
}

export function encodeRr(rr: Rr): Buffer {
  const data = rdata(rr);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(rr.class ?? 1, 2);
  fixed.writeUInt32BE(rr.ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(rr.name), fixed, data]);
}

export function soa(zone: string, ttl: number, minimum: number): Rr {
  const numbers = Buffer.alloc(20);
  numbers.writeUInt32BE(1, 0);
  numbers.writeUInt32BE(7200, 4);
  numbers.writeUInt32BE(900, 8);
  numbers.writeUInt32BE(1209600, 12);
  numbers.writeUInt32BE(minimum, 16);
  return { name: zone, type: T.SOA, ttl, data: Buffer.concat([encodeName(`ns.${zone}`), encodeName(`hostmaster.${zone}`), numbers]) };
}

export interface EdnsOption { code: number; data: Buffer }

export function optRecord(udpSize = 1232, options: EdnsOption[] = [], dnssecOk = false): Buffer {
  const body = Buffer.concat(options.map((o) => {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(o.code, 0);
    h.writeUInt16BE(o.data.length, 2);
    return Buffer.concat([h, o.data]);
  }));
  const fixed = Buffer.alloc(11);
  fixed[0] = 0;
  fixed.writeUInt16BE(T.OPT, 1);
  fixed.writeUInt16BE(udpSize, 3);
  fixed.writeUInt32BE(dnssecOk ? 0x8000 : 0, 5);
  fixed.writeUInt16BE(body.length, 9);
  return Buffer.concat([fixed, body]);
}

export interface QueryOptions {
  id?: number;
  edns?: boolean;
  udpSize?: number;
  dnssecOk?: boolean;
  options?: EdnsOption[];
  rd?: boolean;
  qclass?: number;
}

export function buildQuery(name: string, type: number, o: QueryOptions = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.id ?? Math.floor(Math.random() * 65536), 0);
  header.writeUInt16BE(o.rd === false ? 0 : 0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(o.edns ? 1 : 0, 10);
  const q = Buffer.alloc(4);
  q.writeUInt16BE(type, 0);
  q.writeUInt16BE(o.qclass ?? 1, 2);
  const parts = [header, encodeName(name), q];
  if (o.edns) parts.push(optRecord(o.udpSize ?? 1232, o.options ?? [], o.dnssecOk ?? false));
  return Buffer.concat(parts);
}

export interface DecodedRr {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
  /** A/AAAA address text, CNAME target, or undefined. */
  text?: string;
}

export interface Decoded {
  id: number;
  flags: number;
  qr: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  aa: boolean;
  rcode: number;
  question: { name: string; type: number; class: number } | null;
  answers: DecodedRr[];
  authority: DecodedRr[];
  additional: DecodedRr[];
  opt: { udpSize: number; extendedRcode: number; dnssecOk: boolean; options: EdnsOption[] } | null;
}

export function readName(msg: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let off = start;
  let end = -1;
  for (let jumps = 0; jumps < 50; jumps++) {
    const len = msg[off]!;
    if (len === 0) {
      if (end < 0) end = off + 1;
      return { name: labels.join('.'), end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = off + 2;
      off = ((len & 0x3f) << 8) | msg[off + 1]!;
      continue;
    }
    labels.push(msg.toString('latin1', off + 1, off + 1 + len));
    off += len + 1;
  }
  throw new Error('name loop');
}

function formatIpv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}

export function decode(msg: Buffer): Decoded {
  const flags = msg.readUInt16BE(2);
  const counts = [msg.readUInt16BE(4), msg.readUInt16BE(6), msg.readUInt16BE(8), msg.readUInt16BE(10)];
  let off = 12;
  let question: Decoded['question'] = null;
  if (counts[0]! > 0) {
    const n = readName(msg, off);
    question = { name: n.name, type: msg.readUInt16BE(n.end), class: msg.readUInt16BE(n.end + 2) };
    off = n.end + 4;
  }
  const sections: DecodedRr[][] = [[], [], []];
  let opt: Decoded['opt'] = null;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const n = readName(msg, off);
      const type = msg.readUInt16BE(n.end);
      const cls = msg.readUInt16BE(n.end + 2);
      const ttl = msg.readUInt32BE(n.end + 4);
      const len = msg.readUInt16BE(n.end + 8);
      const data = msg.subarray(n.end + 10, n.end + 10 + len);
      off = n.end + 10 + len;
      if (type === T.OPT) {
        const options: EdnsOption[] = [];
        for (let p = 0; p + 4 <= data.length;) {
          const code = data.readUInt16BE(p);
          const l = data.readUInt16BE(p + 2);
          options.push({ code, data: Buffer.from(data.subarray(p + 4, p + 4 + l)) });
          p += 4 + l;
        }
        opt = { udpSize: cls, extendedRcode: ttl >>> 24, dnssecOk: (ttl & 0x8000) !== 0, options };
        continue;
      }
      let text: string | undefined;
      if (type === T.A && len === 4) text = [...data].join('.');
      else if (type === T.AAAA && len === 16) text = formatIpv6(data);
      else if (type === T.CNAME || type === T.PTR) text = readName(msg, n.end + 10).name;
      sections[s]!.push({ name: n.name, type, class: cls, ttl, rdata: Buffer.from(data), ...(text === undefined ? {} : { text }) });
    }
  }
  return {
    id: msg.readUInt16BE(0), flags, qr: (flags & 0x8000) !== 0, aa: (flags & 0x0400) !== 0, tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0, ra: (flags & 0x0080) !== 0, rcode: (flags & 0x0f) | ((opt?.extendedRcode ?? 0) << 4),
    question, answers: sections[0]!, authority: sections[1]!, additional: sections[2]!, opt,
  };
}

export function isIp4(text: string): boolean {
  return isIPv4(text);
}
