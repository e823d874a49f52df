// Reading a client's query straight from its bytes: header checks, the question, and the
// EDNS OPT record. No DNS library on this path: it runs for every packet.
import {
  EDNS_DO, FLAG_QR, HEADER_LENGTH, OPCODE_MASK, QTYPE, RCODE, UDP_PLAIN_LIMIT,
} from './constants.js';
import { MAX_LABEL, MAX_NAME_WIRE } from './names.js';
import type { Transport } from '../net/transport.js';
import type { PackedAnswer } from './packed-answer.js';
import type { ResponseInfo } from './response.js';

/** Largest query we look at. Real queries are a few hundred bytes; anything bigger is abuse. */
export const MAX_QUERY = 4096;

/** Sentinel results of parseQuery that are not a Query. */
export const DROP = -1;

/**
 * A parsed client query, one object per packet. What the bytes say is set in the
 * constructor; where the packet came from (clientAddress, clientPort, receivedAt, transport)
 * is filled in by the listener afterwards. Every field has a value from the start, so all
 * queries share one object shape.
 */
export class Query {
  id: number;
  flags: number;
  /** Lower-cased wire form of the qname, as a latin1 string (see names.ts). */
  qnameKey: string;
  /** Cache key: qnameKey + qtype + qclass + EDNS state (none, EDNS, EDNS with DO). */
  cacheKey: string;
  qtype: number;
  qclass: number;
  /** Offset just past the question (qname + qtype + qclass). */
  questionEnd: number;
  edns: boolean;
  dnssecOk: boolean;
  /** What this client can take over UDP: 512 without EDNS, else its advertised size. */
  udpLimit: number;
  /** Offset of the OPT record's class field (the UDP size), or -1. */
  optOffset: number;
  // Filled in by the listener.
  clientAddress = '';
  clientPort = 0;
  /** performance.now() when the query arrived; 0 when no one needs timing. */
  receivedAt = 0;
  transport: Transport | null = null;
  // Filled in by the pipeline (src/pipeline/pipeline.ts).
  /** Index of the stage that has the query: where its answer starts its way back. */
  stage = 0;
  /** Set on the query whose upstream answer is fresh (not yet in the cache); null otherwise. */
  upstreamInfo: ResponseInfo | null = null;
  /** An expired cached answer (serve-stale, RFC 8767): sent when the upstreams fail. */
  stale: PackedAnswer | null = null;
  /** The rate limiter's in-flight ticket while the query waits for an upstream; -1 otherwise. */
  ticket = -1;

  constructor(readonly msg: Buffer, qnameKey: string, cacheKey: string, qtype: number, qclass: number,
    questionEnd: number, edns: boolean, dnssecOk: boolean, udpLimit: number, optOffset: number) {
    this.id = u16(msg, 0);
    this.flags = u16(msg, 2);
    this.qnameKey = qnameKey;
    this.cacheKey = cacheKey;
    this.qtype = qtype;
    this.qclass = qclass;
    this.questionEnd = questionEnd;
    this.edns = edns;
    this.dnssecOk = dnssecOk;
    this.udpLimit = udpLimit;
    this.optOffset = optOffset;
  }
}

/** Why a packet could not be taken as a query: the rcode to answer with, and whether the question parsed. */
export interface Rejection {
  rcode: number;
  /** End of the question when it parsed, so the error answer can echo it; 0 otherwise. */
  questionEnd: number;
}

/**
 * A big-endian u16 at an offset the caller has checked is inside `msg`: every query reads a
 * dozen, and indexing costs half of Buffer.readUInt16BE (which checks its argument again).
 */
const u16 = (msg: Buffer, at: number): number => (msg[at]! << 8) | msg[at + 1]!;

// One scratch buffer for lower-casing names: parsing is synchronous, so it is never shared.
const scratch = Buffer.allocUnsafe(MAX_NAME_WIRE + 8);

/**
 * Reads the question at offset 12 into `scratch`, lower-cased, without the root byte.
 * Returns the offset after the name's root byte, or -1 when the name is malformed
 * (compression pointers are not allowed in a query's question).
 */
function readQuestionName(msg: Buffer): number {
  let off = HEADER_LENGTH;
  let out = 0;
  for (;;) {
    if (off >= msg.length) return -1;
    const len = msg[off]!;
    if (len === 0) return off + 1;
    if (len > MAX_LABEL) return -1;
    if (off + 1 + len > msg.length || out + 1 + len + 1 > MAX_NAME_WIRE) return -1;
    scratch[out++] = len;
    for (let i = off + 1; i <= off + len; i++) {
      const c = msg[i]!;
      scratch[out++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    off += len + 1;
  }
}

/** Skips a possibly compressed name; returns the offset after it or -1. */
export function skipName(msg: Buffer, off: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (off >= msg.length) return -1;
    const len = msg[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= msg.length ? off + 2 : -1;
    if (len > MAX_LABEL) return -1;
    off += len + 1;
  }
  return -1;
}

/**
 * Parses a packet that claims to be a query. Returns the Query, DROP for packets not worth
 * an answer (too short to carry an ID, or a response sent to us — answering those is how
 * loops and reflection start), or a Rejection naming the rcode to answer with.
 */
export function parseQuery(msg: Buffer): Query | Rejection | typeof DROP {
  if (msg.length < HEADER_LENGTH) return DROP;
  const flags = u16(msg, 2);
  if (flags & FLAG_QR) return DROP;
  if (msg.length > MAX_QUERY) return { rcode: RCODE.FORMERR, questionEnd: 0 };
  if ((flags & OPCODE_MASK) !== 0) return { rcode: RCODE.NOTIMP, questionEnd: 0 };
  const qdcount = u16(msg, 4);
  const ancount = u16(msg, 6);
  const nscount = u16(msg, 8);
  const arcount = u16(msg, 10);
  if (qdcount !== 1 || ancount !== 0 || nscount !== 0 || arcount > 2) {
    return { rcode: RCODE.FORMERR, questionEnd: 0 };
  }
  const nameEnd = readQuestionName(msg);
  if (nameEnd < 0 || nameEnd + 4 > msg.length) return { rcode: RCODE.FORMERR, questionEnd: 0 };
  const nameLength = nameEnd - HEADER_LENGTH - 1;
  const qtype = u16(msg, nameEnd);
  const qclass = u16(msg, nameEnd + 2);
  const questionEnd = nameEnd + 4;

  // Additional section: at most one OPT (RFC 6891 6.1.1), perhaps a TSIG we pass along.
  let edns = false;
  let dnssecOk = false;
  let udpLimit = UDP_PLAIN_LIMIT;
  let optOffset = -1;
  let off = questionEnd;
  for (let i = 0; i < arcount; i++) {
    const nameEndAr = skipName(msg, off);
    if (nameEndAr < 0 || nameEndAr + 10 > msg.length) return { rcode: RCODE.FORMERR, questionEnd };
    const type = u16(msg, nameEndAr);
    const rdlength = u16(msg, nameEndAr + 8);
    const next = nameEndAr + 10 + rdlength;
    if (next > msg.length) return { rcode: RCODE.FORMERR, questionEnd };
    if (type === QTYPE.OPT) {
      if (edns || nameEndAr !== off + 1) return { rcode: RCODE.FORMERR, questionEnd };
      edns = true;
      optOffset = nameEndAr + 2;
      udpLimit = Math.max(UDP_PLAIN_LIMIT, u16(msg, optOffset));
      const version = msg[nameEndAr + 5]!;
      if (version !== 0) return { rcode: RCODE.BADVERS, questionEnd };
      dnssecOk = (u16(msg, nameEndAr + 6) & EDNS_DO) !== 0;
    }
    off = next;
  }

  // The cache key: name, then qtype, qclass and EDNS state as raw bytes after a 0 byte
  // (a 0 byte cannot occur inside a key, so the parts cannot run into each other).
  let k = nameLength;
  scratch[k++] = 0;
  scratch[k++] = qtype >> 8;
  scratch[k++] = qtype & 0xff;
  scratch[k++] = qclass >> 8;
  scratch[k++] = qclass & 0xff;
  scratch[k++] = edns ? (dnssecOk ? 2 : 1) : 0;
  const cacheKey = scratch.toString('latin1', 0, k);
  const qnameKey = cacheKey.slice(0, nameLength);
  return new Query(msg, qnameKey, cacheKey, qtype, qclass, questionEnd, edns, dnssecOk, udpLimit, optOffset);
}
