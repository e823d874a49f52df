// Building answers from the query's own bytes: the client's header and question are copied
// (keeping its ID and the exact case of its qname), then records are appended. Templates
// for the sinkhole records are built once, when the configuration is loaded.
import { isIPv4, isIPv6 } from 'node:net';
import {
  CLASS_IN, EDNS_OPTION_EDE, EDNS_UDP_SIZE, FLAG_AA, FLAG_CD, FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, HEADER_LENGTH,
  OPCODE_MASK, QTYPE, RCODE,
} from './constants.js';
import type { Query } from './query.js';

export interface SinkholeTemplates {
  /** Answer record for A: owner is a pointer to the qname (offset 12). */
  a: Buffer;
  /** Answer record for AAAA. */
  aaaa: Buffer;
  /** Authority SOA record; its owner pointer (bytes 0-1) is patched per answer. */
  soa: Buffer;
}

function ipv6Bytes(address: string): Buffer {
  // Expand `::` and any embedded IPv4 tail, then write 8 groups.
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + ((b[0]! << 8) | b[1]!).toString(16) + ':' + ((b[2]! << 8) | b[3]!).toString(16);
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...fill, ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Address text -> 4 or 16 bytes. Throws on text that is not an IP address. */
export function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  if (isIPv6(address)) return ipv6Bytes(address);
  throw new Error(`"${address}" is not an IP address`);
}

/**
 * src[from..to) -> dst at `at`. Answers are made of a few dozen bytes, where Buffer.copy
 * costs more than the copying (it makes a typed-array view per call); byte by byte is
 * cheaper up to a few hundred.
 */
export function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): void {
  if (to - from > 256) {
    src.copy(dst, at, from, to);
    return;
  }
  for (let i = from; i < to; i++) dst[at++] = src[i]!;
}

function record(type: number, ttl: number, rdata: Buffer): Buffer {
  const rr = Buffer.alloc(12 + rdata.length);
  rr.writeUInt16BE(0xc000 | HEADER_LENGTH, 0);
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(CLASS_IN, 4);
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(rdata.length, 10);
  rdata.copy(rr, 12);
  return rr;
}

export function buildTemplates(ipv4: string, ipv6: string, ttl: number): SinkholeTemplates {
  // SOA rdata: MNAME sinkhole.invalid., RNAME hostmaster.sinkhole.invalid., serial 1,
  // refresh/retry/expire nominal, MINIMUM = the blocked TTL so that NODATA answers are
  // cached by clients no longer than a blocked A answer (RFC 2308 section 5).
  const mname = Buffer.from('\x08sinkhole\x07invalid\x00', 'latin1');
  const rname = Buffer.from('\x0ahostmaster\x08sinkhole\x07invalid\x00', 'latin1');
  const numbers = Buffer.alloc(20);
  numbers.writeUInt32BE(1, 0);
  numbers.writeUInt32BE(3600, 4);
  numbers.writeUInt32BE(600, 8);
  numbers.writeUInt32BE(86400, 12);
  numbers.writeUInt32BE(ttl, 16);
  return {
    a: record(QTYPE.A, ttl, addressBytes(ipv4)),
    aaaa: record(QTYPE.AAAA, ttl, addressBytes(ipv6)),
    soa: record(QTYPE.SOA, ttl, Buffer.concat([mname, rname, numbers])),
  };
}

/** Length of the OPT record we append: root name, type, class, TTL, rdlength, options. */
function optLength(edeText: string | undefined): number {
  return 11 + (edeText === undefined ? 0 : 6 + Buffer.byteLength(edeText));
}

/**
 * Writes our OPT record at `off`: UDP size 1232, DO echoed, and an Extended DNS Error
 * (RFC 8914) when `ede` is given. Returns the offset after it.
 */
function writeOpt(out: Buffer, off: number, dnssecOk: boolean, ede?: { code: number; text: string }): number {
  out[off] = 0;
  out.writeUInt16BE(QTYPE.OPT, off + 1);
  out.writeUInt16BE(EDNS_UDP_SIZE, off + 3);
  out.writeUInt32BE(dnssecOk ? 0x8000 : 0, off + 5);
  if (ede === undefined) {
    out.writeUInt16BE(0, off + 9);
    return off + 11;
  }
  const textLength = out.write(ede.text, off + 17, 'utf8');
  out.writeUInt16BE(6 + textLength, off + 9);
  out.writeUInt16BE(EDNS_OPTION_EDE, off + 11);
  out.writeUInt16BE(2 + textLength, off + 13);
  out.writeUInt16BE(ede.code, off + 15);
  return off + 17 + textLength;
}

/** Response flags for an answer we make ourselves: QR, RA, and the client's opcode, RD and CD. */
function responseFlags(queryFlags: number, rcode: number): number {
  return FLAG_QR | FLAG_RA | (queryFlags & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | (rcode & 0x0f);
}

/**
 * The answer for a blocked name: A -> the IPv4 sinkhole, AAAA -> the IPv6 sinkhole, any other
 * type -> NOERROR with no answer and an SOA in the authority section, owned by the blocked
 * domain (`ownerOffset` is where that suffix starts inside the qname).
 */
export function blockedAnswer(q: Query, t: SinkholeTemplates, ownerOffset: number, ede?: { code: number; text: string }): Buffer {
  const answer = q.qclass !== CLASS_IN ? undefined : q.qtype === QTYPE.A ? t.a : q.qtype === QTYPE.AAAA ? t.aaaa : undefined;
  const rr = answer ?? t.soa;
  const optEde = q.edns ? ede : undefined;
  const length = q.questionEnd + rr.length + (q.edns ? optLength(optEde?.text) : 0);
  const out = Buffer.allocUnsafe(length);
  copyBytes(q.msg, 0, q.questionEnd, out, 0);
  out.writeUInt16BE(responseFlags(q.flags, RCODE.NOERROR), 2);
  out.writeUInt16BE(answer ? 1 : 0, 6);
  out.writeUInt16BE(answer ? 0 : 1, 8);
  out.writeUInt16BE(q.edns ? 1 : 0, 10);
  copyBytes(rr, 0, rr.length, out, q.questionEnd);
  if (!answer) out.writeUInt16BE(0xc000 | (HEADER_LENGTH + ownerOffset), q.questionEnd);
  if (q.edns) writeOpt(out, q.questionEnd + rr.length, q.dnssecOk, optEde);
  return out;
}

/**
 * An answer with no records and the given rcode (SERVFAIL, REFUSED, NXDOMAIN, FORMERR...).
 * Echoes the question when `questionEnd` > 0, and an OPT record when the query had one.
 */
export function emptyAnswer(msg: Buffer, questionEnd: number, rcode: number, edns: boolean, dnssecOk = false,
  ede?: { code: number; text: string }): Buffer {
  const body = questionEnd > 0 ? questionEnd : HEADER_LENGTH;
  const extended = rcode > 0x0f;
  const withOpt = edns || extended;
  const out = Buffer.allocUnsafe(body + (withOpt ? optLength(ede?.text) : 0));
  copyBytes(msg, 0, body, out, 0);
  out.writeUInt16BE(responseFlags(msg.readUInt16BE(2), rcode), 2);
  out.writeUInt16BE(questionEnd > 0 ? 1 : 0, 4);
  out.writeUInt32BE(0, 6);
  out.writeUInt16BE(withOpt ? 1 : 0, 10);
  if (withOpt) {
    const end = writeOpt(out, body, dnssecOk, ede);
    // Extended rcode: upper 8 bits live in the OPT TTL's first byte (RFC 6891 6.1.3).
    if (extended) out[body + 5] = rcode >> 4;
    return out.subarray(0, end);
  }
  return out;
}

export function queryEmptyAnswer(q: Query, rcode: number, ede?: { code: number; text: string }): Buffer {
  return emptyAnswer(q.msg, q.questionEnd, rcode, q.edns, q.dnssecOk, ede);
}

/**
 * An upstream answer (the bytes of `src` from `start`) made this client's: its ID, its RD bit
 * and its exact question bytes (0x20 mixed case survives). The question is the same name, so
 * every record keeps its offset.
 */
export function copyAnswer(q: Query, src: Buffer, start: number): Buffer {
  const out = Buffer.allocUnsafe(src.length - start);
  copyBytes(src, start, src.length, out, 0);
  out.writeUInt16BE(q.id, 0);
  out[2] = (out[2]! & ~(FLAG_RD >> 8)) | (q.msg[2]! & (FLAG_RD >> 8));
  copyBytes(q.msg, HEADER_LENGTH, q.questionEnd, out, HEADER_LENGTH);
  return out;
}

/**
 * For an answer too large for the client over UDP: no records, the upstream's flags (AA, AD,
 * rcode) with TC set, so the client asks again over TCP. Never a partial record.
 */
export function truncatedAnswer(q: Query, src: Buffer, start: number): Buffer {
  const out = emptyAnswer(q.msg, q.questionEnd, src[start + 3]! & 0x0f, q.edns, q.dnssecOk);
  out.writeUInt16BE((src.readUInt16BE(start + 2) | FLAG_TC) & ~FLAG_RD | (q.flags & FLAG_RD), 2);
  return out;
}

/** RFC 8482 section 4.2: an ANY query answered with one synthesized HINFO "RFC8482" record. */
const HINFO_RFC8482 = ((): Buffer => {
  const rdata = Buffer.from('\x07RFC8482\x00', 'latin1');
  return record(QTYPE.HINFO, 3600, rdata);
})();

export function minimalAnyAnswer(q: Query): Buffer {
  const rr = HINFO_RFC8482;
  const out = Buffer.allocUnsafe(q.questionEnd + rr.length + (q.edns ? optLength(undefined) : 0));
  copyBytes(q.msg, 0, q.questionEnd, out, 0);
  out.writeUInt16BE(responseFlags(q.flags, RCODE.NOERROR), 2);
  out.writeUInt16BE(1, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(q.edns ? 1 : 0, 10);
  copyBytes(rr, 0, rr.length, out, q.questionEnd);
  if (q.edns) writeOpt(out, q.questionEnd + rr.length, q.dnssecOk);
  return out;
}

/**
 * A negative answer from a zone this server serves itself (RFC 6303 zones, hosts names):
 * `rcode` (NXDOMAIN, or NOERROR for NODATA) with the SOA template in the authority section,
 * owned by the zone (`ownerOffset`: where the zone's name starts inside the qname).
 */
export function zoneNegativeAnswer(q: Query, t: SinkholeTemplates, ownerOffset: number, rcode: number): Buffer {
  const rr = t.soa;
  const out = Buffer.allocUnsafe(q.questionEnd + rr.length + (q.edns ? optLength(undefined) : 0));
  copyBytes(q.msg, 0, q.questionEnd, out, 0);
  out.writeUInt16BE(responseFlags(q.flags, rcode) | FLAG_AA, 2);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(1, 8);
  out.writeUInt16BE(q.edns ? 1 : 0, 10);
  copyBytes(rr, 0, rr.length, out, q.questionEnd);
  out.writeUInt16BE(0xc000 | (HEADER_LENGTH + ownerOffset), q.questionEnd);
  if (q.edns) writeOpt(out, q.questionEnd + rr.length, q.dnssecOk);
  return out;
}

/**
 * An answer made of records built beforehand (each owned by a pointer to the qname, as
 * `localRecord` makes them): local names from hosts files. No records = NODATA.
 */
export function recordsAnswer(q: Query, records: readonly Buffer[]): Buffer {
  let length = q.questionEnd + (q.edns ? optLength(undefined) : 0);
  for (const r of records) length += r.length;
  const out = Buffer.allocUnsafe(length);
  copyBytes(q.msg, 0, q.questionEnd, out, 0);
  out.writeUInt16BE(responseFlags(q.flags, RCODE.NOERROR) | FLAG_AA, 2);
  out.writeUInt16BE(records.length, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(q.edns ? 1 : 0, 10);
  let off = q.questionEnd;
  for (const r of records) {
    copyBytes(r, 0, r.length, out, off);
    off += r.length;
  }
  if (q.edns) writeOpt(out, off, q.dnssecOk);
  return out;
}

/** A record owned by the question's name (a pointer to offset 12), for recordsAnswer. */
export function localRecord(type: number, ttl: number, rdata: Buffer): Buffer {
  return record(type, ttl, rdata);
}
