// An upstream answer and what reading it found, packed into one Buffer: this is what the
// cache keeps. Why one Buffer: a cached answer used to be a dozen small heap objects (an
// entry, the answer's own ArrayBuffer, a typed array, arrays, record objects). Under a steady
// stream of new names every one of them was copied by the young-generation GC and then
// marked by the old-generation GC, whose pauses of 6-22 ms made the W3 tail latency. Now it
// is one Buffer (two heap objects) per cached answer.
//
// Layout (byte offsets; storedAt little-endian, the rest big-endian like DNS):
//    0  storedAt     float64, Date.now() when stored
//    8  ttlCount     u16
//   10  cnameCount   u16
//   12  addressCount u16
//   14  wireStart    u16, where the answer's bytes begin
//   16  ttlCount × u16: TTL offsets, counted from the answer's first byte
//       cnameCount × u16: CNAME/DNAME rdata offsets (the target names)
//       addressCount × (u16 type, u16 offset, u16 length): A/AAAA/HTTPS/SVCB rdata
//   wireStart .. end: the answer as the upstream sent it (TTLs already clamped)
// A DNS message is at most 65,535 bytes, so every offset and count fits in 16 bits.
import { copyAnswer, truncatedAnswer } from './answer.js';
import type { Query } from './query.js';
import { readNameKey, type ResponseInfo } from './response.js';

export type PackedAnswer = Buffer;

const HEAD = 16;

export function packAnswer(wire: Buffer, info: ResponseInfo, storedAt: number): PackedAnswer {
  const { ttlOffsets, cnameOffsets, addresses } = info;
  const wireStart = HEAD + 2 * (ttlOffsets.length + cnameOffsets.length + addresses.length);
  // Its own memory, exactly its size: a slice of Node's shared 8 KB pool would keep the whole
  // pool (and the short-lived answers around it) alive for as long as the cache holds it.
  const packed = Buffer.allocUnsafeSlow(wireStart + wire.length);
  packed.writeDoubleLE(storedAt, 0);
  packed.writeUInt16BE(ttlOffsets.length, 8);
  packed.writeUInt16BE(cnameOffsets.length, 10);
  packed.writeUInt16BE(addresses.length / 3, 12);
  packed.writeUInt16BE(wireStart, 14);
  let off = HEAD;
  for (let i = 0; i < ttlOffsets.length; i++, off += 2) packed.writeUInt16BE(ttlOffsets[i]!, off);
  for (let i = 0; i < cnameOffsets.length; i++, off += 2) packed.writeUInt16BE(cnameOffsets[i]!, off);
  for (let i = 0; i < addresses.length; i++, off += 2) packed.writeUInt16BE(addresses[i]!, off);
  wire.copy(packed, wireStart);
  return packed;
}

/**
 * A big-endian u16 of a packed answer. Every read below runs on each cache hit; indexing the
 * bytes costs half of Buffer.readUInt16BE, which also checks bounds. A packed answer is built
 * by packAnswer, or its tables were checked by the fleet's plausiblePacked; in a corrupt one
 * an offset past the end reads as 0 here (a TTL 0: expired), and relayPacked's
 * writeUInt32BE still throws on it, as the reads did before.
 */
const u16 = (p: PackedAnswer, at: number): number => (p[at]! << 8) | p[at + 1]!;
/** A big-endian u32 (a TTL). */
const u32 = (p: Buffer, at: number): number => ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;

const wireStartOf = (p: PackedAnswer): number => u16(p, 14);
const cnameTable = (p: PackedAnswer): number => HEAD + 2 * u16(p, 8);
const addressTable = (p: PackedAnswer): number => cnameTable(p) + 2 * u16(p, 10);

/** Date.now() when the answer was stored. */
export function storedAt(p: PackedAnswer): number {
  return p.readDoubleLE(0);
}

/** Where the answer's own bytes begin inside `p`. */
export function answerStart(p: PackedAnswer): number {
  return wireStartOf(p);
}

export function ttlCount(p: PackedAnswer): number {
  return u16(p, 8);
}

/** Offset of the i-th record's TTL, counted from the answer's first byte (answerStart). */
export function ttlOffset(p: PackedAnswer, i: number): number {
  return u16(p, HEAD + 2 * i);
}

export function cnameCount(p: PackedAnswer): number {
  return u16(p, 10);
}

/** The lower-cased key of the i-th CNAME/DNAME target; null when the name is malformed. */
export function cnameTarget(p: PackedAnswer, i: number): string | null {
  const start = wireStartOf(p);
  return readNameKey(p, start + u16(p, cnameTable(p) + 2 * i), start);
}

export function addressCount(p: PackedAnswer): number {
  return u16(p, 12);
}

export function addressType(p: PackedAnswer, i: number): number {
  return u16(p, addressTable(p) + 6 * i);
}

/** Where the i-th address rdata starts inside `p` itself (not inside the answer). */
export function addressOffset(p: PackedAnswer, i: number): number {
  return wireStartOf(p) + u16(p, addressTable(p) + 6 * i + 2);
}

export function addressLength(p: PackedAnswer, i: number): number {
  return u16(p, addressTable(p) + 6 * i + 4);
}

/**
 * This client's answer: its ID, RD bit and exact question over the stored answer, every TTL
 * lowered by the whole seconds since it was stored. Over UDP an answer larger than the client
 * takes becomes an empty answer with TC set, so that the client retries over TCP.
 */
export function relayPacked(q: Query, p: PackedAnswer, now: number, overUdp: boolean): Buffer {
  const start = wireStartOf(p);
  if (overUdp && p.length - start > q.udpLimit) return truncatedAnswer(q, p, start);
  const out = copyAnswer(q, p, start);
  const age = Math.floor((now - p.readDoubleLE(0)) / 1000);
  if (age > 0) {
    const count = u16(p, 8);
    for (let i = 0, at = HEAD; i < count; i++, at += 2) {
      const off = u16(p, at);
      const ttl = u32(out, off);
      out.writeUInt32BE(ttl > age ? ttl - age : 0, off);
    }
  }
  return out;
}

/**
 * The smallest TTL of the answer as stored, or -1 when it has no record with a TTL; with
 * storedAt, when the answer expires (serve-stale asks on each cache hit).
 */
export function minStoredTtl(p: PackedAnswer): number {
  const start = wireStartOf(p);
  let min = -1;
  for (let i = 0, at = HEAD, n = u16(p, 8); i < n; i++, at += 2) {
    const ttl = u32(p, start + u16(p, at));
    if (min < 0 || ttl < min) min = ttl;
  }
  return min;
}

/** Rewrites every TTL of the packed answer into [min, max], in place. */
export function clampPackedTtls(p: PackedAnswer, min: number, max: number): void {
  const start = wireStartOf(p);
  const count = p.readUInt16BE(8);
  for (let i = 0, at = HEAD; i < count; i++, at += 2) {
    const off = start + p.readUInt16BE(at);
    const ttl = p.readUInt32BE(off);
    if (ttl < min) p.writeUInt32BE(min, off);
    else if (ttl > max) p.writeUInt32BE(max, off);
  }
}
