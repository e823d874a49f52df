// The answer cache: upstream answers kept as bytes, keyed by (qname, qtype, qclass, EDNS/DO),
// each packed with the offsets of its TTLs (wire/packed-answer.ts), so that a hit is served by
// patching numbers, not by decoding, and the cache is one small Buffer per answer for the GC.
// Entries live for the answer's smallest TTL (clamped to [min, max]); negative answers for
// the SOA's negative TTL (RFC 2308); SERVFAIL for a few seconds at most.
import { LRUCache } from 'lru-cache';
import { RCODE } from '../../wire/constants.js';
import { packAnswer, type PackedAnswer } from '../../wire/packed-answer.js';
import { clampTtls, isNegative, type ResponseInfo } from '../../wire/response.js';

export interface CacheOptions {
  size: number;
  minTtl: number;
  maxTtl: number;
  /** How long an upstream SERVFAIL is kept, in seconds. */
  servfailTtl: number;
}

export class AnswerCache {
  private readonly lru: LRUCache<string, PackedAnswer> | null;
  hits = 0;
  misses = 0;

  constructor(private readonly options: CacheOptions) {
    this.lru = options.size > 0 ? new LRUCache<string, PackedAnswer>({ max: options.size }) : null;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  get(key: string): PackedAnswer | undefined {
    const entry = this.lru?.get(key);
    if (entry === undefined) this.misses++;
    else this.hits++;
    return entry;
  }

  /**
   * Packs an upstream answer, and stores it when it may be cached: its TTLs are then clamped
   * in place first, so that the first client sees what later ones will. Returns the packed
   * answer, stored or not: the caller checks and relays that.
   */
  store(key: string, wire: Buffer, info: ResponseInfo): PackedAnswer {
    const lifetime = this.lifetime(info);
    if (lifetime >= 0) clampTtls(wire, info.ttlOffsets, this.options.minTtl, this.options.maxTtl);
    const packed = packAnswer(wire, info, Date.now());
    if (this.lru !== null && lifetime > 0) this.lru.set(key, packed, { ttl: lifetime * 1000 });
    return packed;
  }

  /** Seconds an answer may be kept; -1 when it must not be cached at all. */
  private lifetime(info: ResponseInfo): number {
    const { minTtl, maxTtl, servfailTtl } = this.options;
    if (info.rcode === RCODE.SERVFAIL) return servfailTtl;
    if (isNegative(info)) {
      // Without an SOA there is no negative TTL to honour: do not cache (RFC 2308 section 5).
      if (info.negativeTtl < 0) return -1;
      return Math.min(Math.max(info.negativeTtl, minTtl), maxTtl);
    }
    if (info.rcode === RCODE.NOERROR) return Math.min(Math.max(info.minTtl, minTtl), maxTtl);
    return -1;
  }

  clear(): void {
    this.lru?.clear();
  }
}
