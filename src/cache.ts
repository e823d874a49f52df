// The answer cache: upstream answers kept as bytes, keyed by (qname, qtype, qclass, EDNS/DO),
// with the offsets of their TTLs so a hit is served by patching numbers, not by decoding.
// Entries live for the answer's smallest TTL (clamped to [min, max]); negative answers for
// the SOA's negative TTL (RFC 2308); SERVFAIL for a few seconds at most.
import { LRUCache } from 'lru-cache';
import { RCODE } from './wire/constants.js';
import { clampTtls, isNegative, type ResponseInfo } from './wire/response.js';

export interface CachedAnswer {
  wire: Buffer;
  ttlOffsets: Uint16Array;
  /** Date.now() when stored: a hit subtracts the whole seconds since then from every TTL. */
  storedAt: number;
  /** CNAME targets, re-checked against the rules on every hit (rules change on reload). */
  cnameTargets: readonly string[];
  addressRecords: ResponseInfo['addressRecords'];
}

export interface CacheOptions {
  size: number;
  minTtl: number;
  maxTtl: number;
  /** How long an upstream SERVFAIL is kept, in seconds. */
  servfailTtl: number;
}

export class AnswerCache {
  private readonly lru: LRUCache<string, CachedAnswer> | null;
  hits = 0;
  misses = 0;

  constructor(private readonly options: CacheOptions) {
    this.lru = options.size > 0 ? new LRUCache<string, CachedAnswer>({ max: options.size }) : null;
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  get(key: string): CachedAnswer | undefined {
    const entry = this.lru?.get(key);
    if (entry === undefined) this.misses++;
    else this.hits++;
    return entry;
  }

  /**
   * Clamps the answer's TTLs in place (so the first client sees what later ones will) and
   * stores it when it may be cached. Returns nothing; `wire` is the caller's to relay.
   */
  store(key: string, wire: Buffer, info: ResponseInfo): void {
    const { minTtl, maxTtl, servfailTtl } = this.options;
    let lifetime: number;
    if (info.rcode === RCODE.SERVFAIL) {
      lifetime = servfailTtl;
    } else if (isNegative(info)) {
      // Without an SOA there is no negative TTL to honour: do not cache (RFC 2308 section 5).
      if (info.negativeTtl < 0) return;
      lifetime = Math.min(Math.max(info.negativeTtl, minTtl), maxTtl);
    } else if (info.rcode === RCODE.NOERROR) {
      lifetime = Math.min(Math.max(info.minTtl, minTtl), maxTtl);
    } else {
      return;
    }
    clampTtls(wire, info.ttlOffsets, minTtl, maxTtl);
    if (this.lru === null || lifetime <= 0) return;
    this.lru.set(key, {
      wire, ttlOffsets: info.ttlOffsets, storedAt: Date.now(), cnameTargets: info.cnameTargets,
      addressRecords: info.addressRecords,
    }, { ttl: lifetime * 1000 });
  }

  clear(): void {
    this.lru?.clear();
  }
}
