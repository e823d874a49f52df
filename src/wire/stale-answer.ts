// Serve-stale (RFC 8767): when no upstream answers, an answer the cache holds past its TTL is
// better than SERVFAIL. It goes out as a cached answer does (the client's ID, RD bit and exact
// question over the stored bytes), with every TTL set to 30 seconds (RFC 8767 section 4: the
// client asks again soon, when the upstream may be back) and, for a client that sent EDNS, an
// Extended DNS Error 3, "Stale Answer" (RFC 8914 section 4.4), in the OPT record.
import { copyAnswer, truncatedAnswer } from './answer.js';
import { EDNS_OPTION_EDE, EDNS_UDP_SIZE, HEADER_LENGTH, QTYPE } from './constants.js';
import { answerStart, minStoredTtl, storedAt, ttlCount, ttlOffset, type PackedAnswer } from './packed-answer.js';
import { skipName, type Query } from './query.js';

/** TTL of a stale record (RFC 8767 section 4 recommends 30 seconds). */
export const STALE_TTL = 30;
/** RFC 8914 section 4.4. */
export const EDE_STALE_ANSWER = 3;

/** The EDE option: code 15, length 2, INFO-CODE 3, no EXTRA-TEXT (an answer no larger than it must be). */
const EDE_OPTION = Buffer.from([EDNS_OPTION_EDE >> 8, EDNS_OPTION_EDE & 0xff, 0, 2, 0, EDE_STALE_ANSWER]);

/**
 * Seconds since the first of `p`'s records expired (its smallest TTL, as stored, run out);
 * negative while every record is still fresh. For --stale-max-age: serve stale while this is
 * at most that.
 */
export function staleSeconds(p: PackedAnswer, now: number): number {
  const minTtl = minStoredTtl(p);
  const age = (now - storedAt(p)) / 1000;
  return minTtl < 0 ? age : age - minTtl;
}

/**
 * This client's stale answer from `p`: TTLs 30, EDE 3 when the client sent EDNS (added to the
 * stored OPT record, or in an OPT record of our own when the answer has none). Over UDP an
 * answer larger than the client takes becomes an empty answer with TC set, as a cached one does.
 */
export function relayStale(q: Query, p: PackedAnswer, overUdp: boolean): Buffer {
  const start = answerStart(p);
  const out = copyAnswer(q, p, start);
  for (let i = 0, n = ttlCount(p); i < n; i++) out.writeUInt32BE(STALE_TTL, ttlOffset(p, i));
  const stale = q.edns ? withStaleEde(out, q.dnssecOk) : out;
  if (overUdp && stale.length > q.udpLimit) return truncatedAnswer(q, p, start);
  return stale;
}

/** `msg` with the EDE option in its OPT record; the same bytes when they cannot be walked (never seen from a checked upstream answer). */
function withStaleEde(msg: Buffer, dnssecOk: boolean): Buffer {
  const records = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  const additionalFrom = msg.readUInt16BE(6) + msg.readUInt16BE(8);
  let off = skipName(msg, HEADER_LENGTH);
  if (off < 0) return msg;
  off += 4;
  for (let i = 0; i < records; i++) {
    const nameEnd = skipName(msg, off);
    if (nameEnd < 0 || nameEnd + 10 > msg.length) return msg;
    const rdEnd = nameEnd + 10 + msg.readUInt16BE(nameEnd + 8);
    if (rdEnd > msg.length) return msg;
    if (i >= additionalFrom && msg.readUInt16BE(nameEnd) === QTYPE.OPT) {
      // Into the OPT record's rdata, after its other options; later records move along.
      const out = Buffer.allocUnsafe(msg.length + EDE_OPTION.length);
      msg.copy(out, 0, 0, rdEnd);
      EDE_OPTION.copy(out, rdEnd);
      msg.copy(out, rdEnd + EDE_OPTION.length, rdEnd);
      out.writeUInt16BE(msg.readUInt16BE(nameEnd + 8) + EDE_OPTION.length, nameEnd + 8);
      return out;
    }
    off = rdEnd;
  }
  // No OPT record in the answer: one of ours at the end (root name, type, UDP size, TTL with DO, rdata).
  const out = Buffer.allocUnsafe(msg.length + 11 + EDE_OPTION.length);
  msg.copy(out, 0);
  let at = msg.length;
  out[at] = 0;
  out.writeUInt16BE(QTYPE.OPT, at + 1);
  out.writeUInt16BE(EDNS_UDP_SIZE, at + 3);
  out.writeUInt32BE(dnssecOk ? 0x8000 : 0, at + 5);
  out.writeUInt16BE(EDE_OPTION.length, at + 9);
  at += 11;
  EDE_OPTION.copy(out, at);
  out.writeUInt16BE(msg.readUInt16BE(10) + 1, 10);
  return out;
}
