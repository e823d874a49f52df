// Reading an upstream's response once, when it arrives: does it answer our question, where
// are its TTLs (so cache hits can age them without decoding), how long may it be cached,
// and which names and addresses does it carry (for CNAME and answer-IP rules).
import { CLASS_IN, FLAG_QR, FLAG_TC, HEADER_LENGTH, QTYPE, RCODE } from './constants.js';
import { MAX_NAME_WIRE } from './names.js';
import { skipName } from './query.js';

/** True when `resp` is a response whose question is exactly (name case-insensitively) ours. */
export function answersQuestion(resp: Buffer, qnameKey: string, qtype: number, qclass: number): boolean {
  if (resp.length < HEADER_LENGTH + 5) return false;
  if ((resp.readUInt16BE(2) & FLAG_QR) === 0 || resp.readUInt16BE(4) !== 1) return false;
  let off = HEADER_LENGTH;
  const end = off + qnameKey.length;
  if (end + 5 > resp.length) return false;
  for (let i = 0; i < qnameKey.length; i++, off++) {
    let c = resp[off]!;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== qnameKey.charCodeAt(i)) return false;
  }
  return resp[end] === 0 && resp.readUInt16BE(end + 1) === qtype && resp.readUInt16BE(end + 3) === qclass;
}

export interface ResponseInfo {
  rcode: number;
  truncated: boolean;
  answerCount: number;
  /** Offsets of every record's TTL, except the OPT pseudo-record's. */
  ttlOffsets: Uint16Array;
  /** Smallest TTL in the answer and authority sections; -1 when they are empty. */
  minTtl: number;
  /** RFC 2308: min(SOA TTL, SOA MINIMUM) of the authority SOA; -1 when there is none. */
  negativeTtl: number;
  /** Offsets of the CNAME/DNAME rdata (the target names) in the answer section. */
  cnameOffsets: number[];
  /** A/AAAA and HTTPS/SVCB rdata in the answer section, flat: type, offset, length, type... */
  addresses: number[];
}

/**
 * Reads a (possibly compressed) name at `off` into a lower-cased key; null when malformed.
 * `base` is where the message starts inside `msg`: compression pointers count from there.
 */
export function readNameKey(msg: Buffer, off: number, base = 0): string | null {
  let key = '';
  for (let jumps = 0; jumps < 64;) {
    if (off >= msg.length) return null;
    const len = msg[off]!;
    if (len === 0) return key;
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= msg.length) return null;
      off = base + (((len & 0x3f) << 8) | msg[off + 1]!);
      jumps++;
      continue;
    }
    if (len > 63 || off + 1 + len > msg.length) return null;
    key += String.fromCharCode(len) + msg.toString('latin1', off + 1, off + 1 + len).toLowerCase();
    if (key.length >= MAX_NAME_WIRE) return null;
    off += len + 1;
  }
  return null;
}

/**
 * Walks every record of a response. Returns null when the message is malformed (a record
 * runs past the end): such a response is treated as no response at all.
 */
export function inspectResponse(resp: Buffer, questionEnd: number): ResponseInfo | null {
  const flags = resp.readUInt16BE(2);
  const ancount = resp.readUInt16BE(6);
  const nscount = resp.readUInt16BE(8);
  const arcount = resp.readUInt16BE(10);
  const total = ancount + nscount + arcount;
  // Each record needs at least 11 bytes: a cheap bound before walking a hostile message.
  if (questionEnd + total * 11 > resp.length) return null;
  const ttlOffsets = new Uint16Array(total);
  let ttlCount = 0;
  let minTtl = -1;
  let negativeTtl = -1;
  let rcode = flags & 0x0f;
  const cnameOffsets: number[] = [];
  const addresses: number[] = [];
  let off = questionEnd;
  for (let i = 0; i < total; i++) {
    const nameEnd = skipName(resp, off);
    if (nameEnd < 0 || nameEnd + 10 > resp.length) return null;
    const type = resp.readUInt16BE(nameEnd);
    const rdlength = resp.readUInt16BE(nameEnd + 8);
    const rdata = nameEnd + 10;
    if (rdata + rdlength > resp.length) return null;
    if (type === QTYPE.OPT) {
      rcode |= resp[nameEnd + 4]! << 4;
    } else {
      const ttl = resp.readUInt32BE(nameEnd + 4);
      ttlOffsets[ttlCount++] = nameEnd + 4;
      const section = i < ancount ? 0 : i < ancount + nscount ? 1 : 2;
      if (section < 2 && (minTtl < 0 || ttl < minTtl)) minTtl = ttl;
      if (section === 1 && type === QTYPE.SOA && rdlength >= 22) {
        const minimum = resp.readUInt32BE(rdata + rdlength - 4);
        negativeTtl = Math.min(ttl, minimum);
      }
      if (section === 0 && resp.readUInt16BE(nameEnd + 2) === CLASS_IN) {
        if (type === QTYPE.CNAME || type === 39 /* DNAME */) {
          cnameOffsets.push(rdata);
        } else if (type === QTYPE.A || type === QTYPE.AAAA || type === QTYPE.HTTPS || type === QTYPE.SVCB) {
          addresses.push(type, rdata, rdlength);
        }
      }
    }
    off = rdata + rdlength;
  }
  return {
    rcode,
    truncated: (flags & FLAG_TC) !== 0,
    answerCount: ancount,
    ttlOffsets: ttlCount === total ? ttlOffsets : ttlOffsets.slice(0, ttlCount),
    minTtl,
    negativeTtl,
    cnameOffsets,
    addresses,
  };
}

/** NXDOMAIN, or NOERROR with an empty answer section (NODATA): both cached per RFC 2308. */
export function isNegative(info: ResponseInfo): boolean {
  return info.rcode === RCODE.NXDOMAIN || (info.rcode === RCODE.NOERROR && info.answerCount === 0);
}

/** Rewrites every TTL at `offsets` into [min, max]. */
export function clampTtls(resp: Buffer, offsets: Uint16Array, min: number, max: number): void {
  for (let i = 0; i < offsets.length; i++) {
    const off = offsets[i]!;
    const ttl = resp.readUInt32BE(off);
    if (ttl < min) resp.writeUInt32BE(min, off);
    else if (ttl > max) resp.writeUInt32BE(max, off);
  }
}
